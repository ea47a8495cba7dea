//! The system calls of real programs, each one served. A corpus of
//! distribution programs (interpreters and their REPLs in a terminal,
//! compressors, sort, tar, make with gcc, git, curl, sqlite3, less, vim)
//! runs natively under `strace -f` (every argument raw); each call it makes
//! is put to the guest's seccomp filter and to the remote's routing, as a
//! guest's call would be: it runs on the guest's kernel, is forwarded with
//! its marshalling, is answered by the remote, or brings the process home.
//! The test fails on a call the remote would answer ENOSYS (no row, or a
//! row that says no way), on an ioctl request that would bring the process
//! home, and on a call the table calls `Unsupported` (let through to the
//! guest's kernel to answer ENOSYS) that natively did something else.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use mosaic_remote::{Decision, decide, guest_filter};

/// One call as strace printed it.
struct Call {
    name: String,
    args: [u64; 6],
    /// What it returned, if strace printed it on the same line.
    ret: Option<String>,
}

fn parse_arg(a: &str) -> u64 {
    let a = a.trim();
    if let Some(hex) = a.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).unwrap_or(1)
    } else {
        a.parse::<i64>().map(i64::cast_unsigned).unwrap_or(1)
    }
}

/// The calls of an strace output file (`-f -e raw=all`).
fn calls(text: &str) -> (Vec<Call>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut resumed = Vec::new();
    for line in text.lines() {
        // "PID name(args) = ret" or "PID name(args <unfinished ...>"
        let Some((_, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("<... ") {
            if let Some((name, after)) = r.split_once(" resumed>")
                && let Some((_, ret)) = after.rsplit_once(") = ")
            {
                resumed.push((name.to_string(), ret.trim().to_string()));
            }
            continue;
        }
        let Some(open) = rest.find('(') else { continue };
        let name = &rest[..open];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // "--- SIGCHLD", "+++ exited"
        }
        let body = &rest[open + 1..];
        let (inside, ret) = match body.rsplit_once(") = ") {
            Some((inside, ret)) => (inside, Some(ret.trim().to_string())),
            None => (
                body.split(" <unfinished")
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(')'),
                None,
            ),
        };
        let mut args = [0u64; 6];
        for (i, a) in inside
            .split(", ")
            .filter(|a| !a.is_empty())
            .take(6)
            .enumerate()
        {
            args[i] = parse_arg(a);
        }
        out.push(Call {
            name: name.to_string(),
            args,
            ret,
        });
    }
    (out, resumed)
}

/// Runs `cmd` under `strace -f` in `dir` with `input` on its stdin.
fn trace(dir: &Path, label: &str, cmd: &[&str], input: &[u8]) -> String {
    let out = dir.join(format!("{label}.strace"));
    let mut child = Command::new("timeout")
        .args(["120", "strace", "-f", "-qq", "-e", "raw=all", "-o"])
        .arg(&out)
        .arg("--")
        .args(cmd)
        .current_dir(dir)
        // The distribution's programs: a version manager's shims on the
        // PATH (pyenv's on these machines) run a chain of bash scripts
        // before the program and trace them too; through them the python3
        // REPL under strace stopped ending on its Ctrl-D (three runs in a
        // row, until its 120 s timeout), with /usr/bin/python3 it ends.
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("TERM", "xterm")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for piece in input.split(|&b| b == b'\x01') {
            // \x01 in the input: a pause (a program in a terminal reads
            // its keys one by one).
            let _ = stdin.write_all(piece);
            let _ = stdin.flush();
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
    let done = child.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{label} failed natively: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    std::fs::read_to_string(&out).unwrap()
}

/// In a terminal, as a person would run it (`script` gives it a pty).
fn in_pty(cmd: &str) -> Vec<String> {
    ["script", "-qec", cmd, "/dev/null"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

const PYTHON: &str = "import json, decimal, os, select, socket, subprocess, sys, time, resource, sqlite3, tempfile\n\
    d = tempfile.mkdtemp()\n\
    p = os.path.join(d, 'f.json')\n\
    json.dump({'a': [1, 2, decimal.Decimal('1.1').as_integer_ratio()]}, open(p, 'w'))\n\
    print(json.load(open(p)), os.listdir(d), os.stat(p).st_size)\n\
    r, w = os.pipe(); os.write(w, b'x'); select.select([r], [], [], 1.0); os.read(r, 1)\n\
    a, b = socket.socketpair(); a.send(b'hi'); b.recv(2)\n\
    subprocess.run(['true'])\n\
    db = sqlite3.connect(os.path.join(d, 'db')); db.execute('create table t(x)'); db.execute('insert into t values (1)'); db.commit()\n\
    print(time.process_time() >= 0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0, time.thread_time() >= 0)\n\
    print(open('/proc/self/status').read().count('Vm') > 3)\n";

const PERL: &str = "use IO::Select; pipe(my $r, my $w); syswrite($w, \"x\\n\"); \
    my $s = IO::Select->new($r); my @ready = $s->can_read(1); sysread($r, my $b, 2); \
    select(undef, undef, undef, 0.05); printf(\"%d %s\", scalar(@ready), $b); \
    opendir(my $d, '.'); my @f = readdir($d); print scalar(@f) > 0, \"\\n\";";

const TCL: &str = "set f [open t.txt w]; puts $f hello; close $f\n\
    set f [open t.txt]; puts [gets $f]; close $f\n\
    puts [expr {2**100}]; after 50; puts [clock seconds]\n";

const MAKEFILE: &str =
    "all: hello\nhello: hello.o\n\tgcc -o hello hello.o\nhello.o: hello.c\n\tgcc -O2 -c hello.c\n";

#[test]
fn every_call_of_a_corpus_of_real_programs_is_served() {
    let dir = std::env::temp_dir().join(format!("mosaic-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = (0..40_000)
        .map(|i| format!("line {} {}\n", (i * 7919) % 40_000, i))
        .collect();
    std::fs::write(dir.join("big.txt"), &text).unwrap();
    std::fs::write(
        dir.join("hello.c"),
        "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
    )
    .unwrap();
    std::fs::write(dir.join("Makefile"), MAKEFILE).unwrap();
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let runs: Vec<(&str, Vec<String>, &[u8])> = vec![
        ("python3", s(&["python3", "-c", PYTHON]), b""),
        (
            "python3-repl",
            in_pty("python3 -q"),
            b"1 + 1\n\x01import os; os.getcwd()\n\x01\x04",
        ),
        ("perl", s(&["perl", "-e", PERL]), b""),
        ("bc-pipe", s(&["bc", "-l"]), b"scale=50; 4*a(1)\nquit\n"),
        (
            "bc-repl",
            in_pty("bc -lq"),
            b"2^64\n\x01sqrt(2)\n\x01quit\n",
        ),
        ("tclsh", s(&["tclsh"]), TCL.as_bytes()),
        (
            "sqlite3",
            s(&[
                "sqlite3",
                "wal.db",
                "PRAGMA journal_mode=WAL; create table t(x); begin; insert into t values (1); insert into t values (2); commit; select count(*) from t; PRAGMA integrity_check;",
            ]),
            b"",
        ),
        (
            "gzip",
            s(&[
                "sh",
                "-c",
                "gzip -9 -c big.txt > big.gz && gzip -dc big.gz | cmp - big.txt",
            ]),
            b"",
        ),
        (
            "xz",
            s(&[
                "sh",
                "-c",
                "xz -9 -T1 -c big.txt > big.xz && xz -dc big.xz | cmp - big.txt",
            ]),
            b"",
        ),
        (
            "sort",
            s(&[
                "sort",
                "-S",
                "64K",
                "-T",
                ".",
                "-o",
                "sorted.txt",
                "big.txt",
            ]),
            b"",
        ),
        (
            "tar",
            s(&[
                "sh",
                "-c",
                "tar cf t.tar big.txt hello.c && mkdir -p x && tar xf t.tar -C x",
            ]),
            b"",
        ),
        ("make-gcc", s(&["make", "-s"]), b""),
        (
            "git",
            s(&[
                "sh",
                "-c",
                "git init -q r && cd r && cp ../hello.c . && git add hello.c && git commit -qm one && git log --oneline | wc -l",
            ]),
            b"",
        ),
        (
            "curl",
            s(&[
                "sh",
                "-c",
                &format!(
                    "curl -s -o c.txt file://{}/big.txt && cmp c.txt big.txt",
                    dir.display()
                ),
            ]),
            b"",
        ),
        ("less", in_pty("less big.txt"), b"\x01 \x01G\x01q"),
        (
            "vim",
            in_pty("vim -u NONE -N v.txt"),
            b"\x01ihello\x1b\x01:wq\r\x01",
        ),
    ];
    let prog = guest_filter().unwrap();
    let mut failures = Vec::new();
    // (decision, call and shape) -> count, for the report.
    let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut total = 0u64;
    for (label, cmd, input) in &runs {
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let (list, resumed) = calls(&trace(&dir, label, &cmd, input));
        assert!(list.len() > 20, "{label}: strace saw {} calls", list.len());
        total += list.len() as u64;
        for c in &list {
            let row = mosaic_proto::syscalls::SYSCALLS
                .iter()
                .find(|r| r.name == c.name);
            let nr = match row {
                Some(r) => r.nr,
                None => match c.name.strip_prefix("syscall_0x") {
                    Some(hex) => u32::from_str_radix(hex, 16).unwrap_or(u32::MAX),
                    None => {
                        failures.push(format!("{label}: {} has no row in the table", c.name));
                        continue;
                    }
                },
            };
            let shape = match c.name.as_str() {
                "fcntl" | "ioctl" | "prctl" => {
                    format!("{} {:#x}", c.name, c.args[1].min(u64::from(u32::MAX)))
                }
                "clock_gettime" | "getrusage" => {
                    format!("{} {}", c.name, mosaic_proto::abi::int_arg(c.args[0]))
                }
                _ => c.name.clone(),
            };
            let decision = decide(&prog, nr, &c.args);
            let kind = match &decision {
                Ok(Decision::Local) => "runs on the guest".to_string(),
                Ok(Decision::Forward) => "forwarded".to_string(),
                Ok(Decision::Served) => "answered by the remote".to_string(),
                Ok(Decision::Home(why)) => {
                    // A terminal's or a file's requests are marshalled: a
                    // REPL brought home at each of its ioctls would crawl.
                    if c.name == "ioctl" {
                        failures.push(format!("{label}: {shape} would bring it home ({why})"));
                    }
                    format!("brings it home ({why})")
                }
                Ok(Decision::Refused(why)) => {
                    failures.push(format!("{label}: {shape} would be answered ENOSYS ({why})"));
                    continue;
                }
                Err(e) => {
                    failures.push(format!("{label}: {shape}: the filter: {e}"));
                    continue;
                }
            };
            if row.is_some_and(|r| r.class == mosaic_proto::syscalls::Class::Unsupported)
                && c.ret.as_deref().is_some_and(|r| !r.contains("ENOSYS"))
            {
                failures.push(format!(
                    "{label}: {shape} is Unsupported but returned {:?} natively",
                    c.ret
                ));
            }
            *seen.entry((kind, shape)).or_default() += 1;
        }
        for (name, ret) in &resumed {
            let unsupported = mosaic_proto::syscalls::SYSCALLS
                .iter()
                .any(|r| r.name == name && r.class == mosaic_proto::syscalls::Class::Unsupported);
            if unsupported && !ret.contains("ENOSYS") {
                failures.push(format!(
                    "{label}: {name} is Unsupported but returned {ret} natively"
                ));
            }
        }
    }
    let mut by_kind: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for ((kind, _), n) in &seen {
        let e = by_kind
            .entry(kind.split(' ').next().unwrap_or(""))
            .or_default();
        e.0 += n;
        e.1 += 1;
    }
    eprintln!("{total} calls of {} programs:", runs.len());
    for (kind, (n, shapes)) in &by_kind {
        eprintln!("  {kind}: {n} calls, {shapes} kinds");
    }
    for ((kind, shape), n) in seen
        .iter()
        .filter(|((k, _), _)| k.starts_with("brings") || k.starts_with("answered"))
    {
        eprintln!("  {shape}: {kind}, {n}x");
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
