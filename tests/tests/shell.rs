//! `mosh`, the shell: bash behaviour compared with bash itself, and the
//! openMosix demo and job control typed into a real terminal (tmux).

use std::process::{Command, Stdio};
use std::time::Duration;

use mosaic_tests::{Cluster, bin, text, tmux, wait_for};

/// `bash -c` and `mosh -c` of each script print the same and exit the same.
#[test]
fn mosh_c_prints_and_exits_as_bash_does() {
    let dir = std::env::temp_dir().join(format!("mosaic-test-mosh-c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["b.txt", "a.txt", "c.log"] {
        std::fs::write(dir.join(f), f).unwrap();
    }
    let checks: &[(&str, &str)] = &[
        (
            "pipeline",
            "printf 'b\\na\\nc\\n' | sort | head -n 2 | tr a-z A-Z",
        ),
        (
            "pipeline status",
            "false | true; echo $?; true | false; echo $?; set -o pipefail; false | true; echo $?",
        ),
        (
            "exit code",
            "(exit 7); echo $?; ! true; echo $?; sh -c 'exit 3'; echo $?",
        ),
        ("exit", "echo out; exit 42"),
        ("set -e", "set -e; echo one; false; echo never"),
        (
            "set -e spares conditions",
            "set -e; if false; then :; fi; false || echo rescued; echo end",
        ),
        (
            "here-doc",
            "x=world\ncat <<EOF\nhello $x\n  $(echo sub)\nEOF\ncat <<'EOF'\nliteral $x\nEOF",
        ),
        ("here-doc stripped", "cat <<-EOF\n\tindented\n\tEOF"),
        (
            "background jobs and $!",
            "sleep 2 & p=$!; for i in 1 2 3 4 5 6 7 8 9 10; do [ \"$(cat /proc/$p/comm)\" = sleep ] && break; sleep 0.1; done; [ \"$(cat /proc/$p/comm)\" = sleep ] && echo is-sleep; kill $p; sh -c 'exit 3' & wait $!; echo $?; sleep 5 & kill $!; wait $!; echo $?; wait 99999 2>/dev/null; echo $?; { echo in-list; } & wait; echo all",
        ),
        (
            "functions",
            "fact() { if [ \"$1\" -le 1 ]; then echo 1; else echo $(( $1 * $(fact $(( $1 - 1 ))) )); fi; }; fact 10",
        ),
        (
            "local and return",
            "f() { local v=in; g=$v; return 5; }; v=out; f; echo $? $v $g",
        ),
        (
            "arithmetic",
            "echo $((2**10)) $((7/2)) $((7%3)) $((1<<4)) $(( (3+4)*2 ))",
        ),
        (
            "arithmetic command",
            "i=0; while ((i < 5)); do ((i++)); done; echo $i; ((0)); echo $?",
        ),
        (
            "loops",
            "for i in 1 2 3; do for j in a b; do printf '%s%s ' $i $j; done; done; echo",
        ),
        (
            "case",
            "for w in apple kiwi 42; do case $w in a*) echo A;; [0-9]*) echo N;; *) echo other;; esac; done",
        ),
        (
            "expansions",
            "f=archive.tar.gz; echo ${f%.*} ${f%%.*} ${f#*.} ${#f} ${unset:-dflt}",
        ),
        ("globs", "echo *.txt; echo *.none"),
        (
            "command substitution",
            "n=$(printf '%s\\n' a b c | wc -l); echo \"lines: $n\"",
        ),
        (
            "arguments",
            "set -- one 'two words' three; echo $#; for a in \"$@\"; do echo \"[$a]\"; done",
        ),
    ];
    let mut failures = Vec::new();
    for (name, script) in checks {
        let run = |shell: &std::path::Path| {
            Command::new(shell)
                .args(["-c", script])
                .current_dir(&dir)
                .env_remove("MOSAIC_SOCKET")
                .output()
                .expect("the shell runs")
        };
        let bash = run(std::path::Path::new("bash"));
        let mosh = run(&bin("mosh"));
        if (bash.stdout.as_slice(), bash.status.code())
            != (mosh.stdout.as_slice(), mosh.status.code())
        {
            failures.push(format!(
                "{name}: {script:?}\n  bash: {}\n  mosh: {}",
                text(&bash),
                text(&mosh)
            ));
        }
    }
    // A script with arguments, as `bash script.sh a b`.
    let script = dir.join("script.sh");
    std::fs::write(
        &script,
        "echo \"$0\" has $# args: \"$@\"\nshift\necho rest: $*\nexit 4\n",
    )
    .unwrap();
    let run = |shell: &std::path::Path| {
        Command::new(shell)
            .args([script.to_str().unwrap(), "a", "b c"])
            .current_dir(&dir)
            .output()
            .expect("the shell runs")
    };
    let (bash, mosh) = (run(std::path::Path::new("bash")), run(&bin("mosh")));
    if (bash.stdout.as_slice(), bash.status.code()) != (mosh.stdout.as_slice(), mosh.status.code())
    {
        failures.push(format!(
            "script: bash: {}\n  mosh: {}",
            text(&bash),
            text(&mosh)
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An interactive mosh on node1 of `c`, in a tmux session.
struct Terminal {
    session: String,
    /// Commands run so far (each output is fenced by its number).
    runs: std::cell::Cell<u32>,
}

impl Terminal {
    fn open(c: &Cluster, name: &str) -> Terminal {
        let session = format!("mosh-{name}-{}", std::process::id());
        let home = c.dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let cmd = format!(
            "HOME={} MOSAIC_CLUSTER_DIR={} {} cluster exec node1 -- {}",
            home.display(),
            c.dir.display(),
            bin("mosaic").display(),
            bin("mosh").display()
        );
        let t = Terminal::start(session, &cmd);
        t.screen_shows("the prompt", |s| s.contains("@node1:"));
        t
    }

    /// Runs `cmd` in a new tmux session of 150x50.
    fn start(session: String, cmd: &str) -> Terminal {
        let out = tmux(&[
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "150",
            "-y",
            "50",
            cmd,
        ]);
        assert!(out.status.success(), "{}", text(&out));
        Terminal {
            session,
            runs: Default::default(),
        }
    }

    fn screen(&self) -> String {
        let out = tmux(&[
            "capture-pane",
            "-p",
            "-J",
            "-S",
            "-200",
            "-t",
            &self.session,
        ]);
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Waits until the screen satisfies `ok`; returns it.
    fn screen_shows(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        wait_for(what, Duration::from_secs(60), || {
            let s = self.screen();
            if ok(&s) { Ok(s) } else { Err(s) }
        })
    }

    /// Types a line and Enter.
    fn line(&self, keys: &str) {
        tmux(&["send-keys", "-t", &self.session, "-l", keys]);
        tmux(&["send-keys", "-t", &self.session, "Enter"]);
    }

    /// Sends a key such as C-z.
    fn key(&self, key: &str) {
        tmux(&["send-keys", "-t", &self.session, key]);
    }

    /// Types `line` exactly as given and waits for the prompt after it;
    /// what the screen shows between the line and that prompt.
    fn typed(&self, line: &str) -> String {
        let prompt = |l: &str| l.contains("@node1:");
        // The line typed, and a prompt after it, last on the screen.
        let split = |s: &str| -> Option<String> {
            let lines: Vec<&str> = s.lines().collect();
            let at = lines.iter().rposition(|l| prompt(l) && l.contains(line))?;
            let end = lines.iter().rposition(|l| prompt(l))?;
            let last = lines.iter().rposition(|l| !l.trim().is_empty())?;
            (end > at && last == end).then(|| lines[at + 1..end].join("\n"))
        };
        self.line(line);
        let s = self.screen_shows(&format!("the prompt after {line}"), |s| split(s).is_some());
        split(&s).unwrap_or_default()
    }

    /// Runs `cmd` between two markers and returns what it printed.
    fn run(&self, cmd: &str) -> String {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let (start, end) = (format!("<<{n}"), format!("{n}>>"));
        // The fence keeps $? for the command.
        self.line(&format!(
            "__s=$?; echo '<<'{n}; (exit $__s); {cmd}; echo {n}'>>'"
        ));
        let s = self.screen_shows(&format!("the output of {cmd}"), |s| {
            s.lines().any(|l| l == end)
        });
        let from = s.lines().position(|l| l == start).unwrap_or(0);
        let to = s.lines().position(|l| l == end).unwrap_or(0);
        s.lines()
            .skip(from + 1)
            .take(to.saturating_sub(from + 1))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.session]);
    }
}

/// The openMosix demo, typed into mosh: ten awk loops in the background
/// spread over both nodes on their own, `wait` returns, `jobs` is empty.
#[test]
fn the_openmosix_demo_typed_into_mosh_spreads_over_both_nodes() {
    let mut c = Cluster::up_with("mosh-demo", 2, 41946, &["--cpus-per-node", "1"]);
    let t = Terminal::open(&c, "demo");
    t.line("for i in $(seq 1 10); do awk 'BEGIN { for(i=0;i<10000;i++) for(j=0;j<10000;j++); }' & done");
    let mps = wait_for(
        "mps to show awk jobs on both nodes",
        Duration::from_secs(90),
        || {
            let out = t.run("mps");
            let awk: Vec<&str> = out.lines().filter(|l| l.contains("awk")).collect();
            let on = |n: &str| awk.iter().any(|l| l.split_whitespace().nth(2) == Some(n));
            if on("node1") && on("node2") {
                Ok(out)
            } else {
                Err(out)
            }
        },
    );
    assert!(mps.contains("JOB"), "{mps}");
    let waited = t.run("wait; echo status=$?");
    assert!(waited.contains("status=0"), "{waited}");
    let jobs = t.run("jobs");
    assert_eq!(jobs.trim(), "", "no job left");
    // Tab completes node names.
    tmux(&["send-keys", "-t", &t.session, "-l", "runon no"]);
    t.key("Tab");
    t.key("Tab");
    t.screen_shows("node names offered", |s| s.contains("node2"));
    t.key("C-c");
    drop(t);
    assert!(
        c.log("node1")
            .contains(mosaic_node::daemon::log::MOVING_PROCESS)
    );
    c.down();
}

/// A job's note (`[1]+ moved to node2`) is printed when the job moves,
/// above a line being typed, which stays as it was and runs when
/// finished (before, notes waited for the next prompt).
#[test]
fn a_job_note_prints_while_a_line_is_typed_and_leaves_the_line_whole() {
    let mut c = Cluster::up_with("mosh-notes", 2, 15946, &["--cpus-per-node", "1"]);
    let t = Terminal::open(&c, "notes");
    let mosaic = bin("mosaic");
    let mosaic = mosaic.to_str().unwrap();
    // Locked: it moves when asked only (the balancer would move it on
    // its own, at a moment of its choosing).
    t.line("mawk 'BEGIN { for (;;) n++ }' &");
    let pid = t.run("lock $!; echo pid=$!");
    let pid: i32 = pid
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid: {pid}"));
    // Half a line typed; not entered.
    tmux(&["send-keys", "-t", &t.session, "-l", "echo half"]);
    t.screen_shows("the half line", |s| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.ends_with("echo half"))
    });
    let moved = c.exec("node1", &[mosaic, "migrate", &pid.to_string(), "node2"]);
    assert!(moved.status.success(), "{}", text(&moved));
    let screen = t.screen_shows("the note above the line being typed", |s| {
        s.find("[1]+ moved to node2")
            .is_some_and(|at| s[at..].lines().skip(1).any(|l| l.ends_with("echo half")))
    });
    assert_eq!(
        screen.matches("moved to node2").count(),
        1,
        "one note: {screen}"
    );
    // The line as typed, finished and run.
    t.line(" way");
    t.screen_shows("the line's output", |s| s.lines().any(|l| l == "half way"));
    let killed = t.run("kill %1; wait; echo done");
    assert!(killed.contains("done"), "{killed}");
    c.down();
}

/// A foreground job migrated by hand: Ctrl-Z stops it where it runs, `bg`
/// resumes it there, `fg` brings it back to the terminal, Ctrl-C ends it,
/// and `$?` says each exactly as bash would.
#[test]
fn ctrl_z_bg_fg_ctrl_c_and_kill_of_jobs_as_in_bash() {
    let mut c = Cluster::up_with("mosh-jobs", 2, 42946, &["--cpus-per-node", "1"]);
    let t = Terminal::open(&c, "jobs");
    let mosaic = bin("mosaic");
    let mosaic = mosaic.to_str().unwrap();
    t.line("mawk 'BEGIN { for (;;) n++ }'");
    // Foreground jobs are managed and locked home: they move when asked.
    let pid = wait_for(
        "the job managed and locked",
        Duration::from_secs(20),
        || {
            let ps = c.exec("node1", &[mosaic, "ps", "--json"]);
            let rows: Vec<serde_json::Value> =
                serde_json::from_slice(&ps.stdout).unwrap_or_default();
            rows.iter()
                .find(|r| r["cmd"].as_str().is_some_and(|c| c.contains("n++")) && r["lock"] == true)
                .and_then(|r| r["home_pid"].as_i64())
                .ok_or(format!("{rows:?}"))
        },
    );
    let moved = c.exec("node1", &[mosaic, "migrate", &pid.to_string(), "node2"]);
    assert!(moved.status.success(), "{}", text(&moved));
    let row = |want: &str| {
        wait_for(
            &format!("mps to show the job {want} on node2"),
            Duration::from_secs(20),
            || {
                let out = t.run("mps");
                out.lines()
                    .find(|l| {
                        l.contains(&pid.to_string()) && l.contains("node2") && l.contains(want)
                    })
                    .map(str::to_string)
                    .ok_or(out)
            },
        )
    };
    t.key("C-z");
    t.screen_shows("the job stopped", |s| s.contains("Stopped"));
    let status = t.run("echo status=$?");
    assert!(status.contains("status=148"), "{status}\n{}", t.screen());
    row("stopped");
    let bg = t.run("bg; echo bg=$?; jobs");
    assert!(bg.contains("bg=0") && bg.contains("Running"), "{bg}");
    row("running");
    t.line("fg");
    std::thread::sleep(Duration::from_millis(500));
    t.key("C-c");
    let status = t.run("echo status=$?");
    assert!(status.contains("status=130"), "{status}\n{}", t.screen());
    let jobs = t.run("jobs");
    assert_eq!(jobs.trim(), "", "no job left");
    // `kill %N` of background jobs, as in bash.
    t.line("sleep 101 & sleep 102 &");
    // Typed ahead, the next line can be lost while the shell starts the
    // jobs and sets the terminal again (seen once under load in CI): wait
    // for both jobs and a fresh prompt first.
    // Each job's line is bash's `[N] PID`, and `$!` is the last one's PID.
    let job_line = |s: &str, n: u32| -> Option<i32> {
        s.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("[{n}] "))?.parse().ok())
    };
    let screen = t.screen_shows("both sleeps started", |s| {
        job_line(s, 2).is_some() && s.trim_end().ends_with(['#', '$'])
    });
    let (first, second) = (job_line(&screen, 1), job_line(&screen, 2));
    let bang = t.run("echo bang=$!");
    assert!(
        bang.contains(&format!("bang={}", second.unwrap())),
        "{bang}\n{screen}"
    );
    let pgrep = |what: &str| {
        String::from_utf8_lossy(&c.exec("node1", &["pgrep", "-fx", what]).stdout)
            .trim()
            .parse::<i32>()
            .ok()
    };
    assert_eq!(
        (first, second),
        (pgrep("sleep 101"), pgrep("sleep 102")),
        "{screen}"
    );
    let killed = t.run("sleep 0.3; kill %1; echo k=$?; wait %1; echo w=$?");
    assert!(
        killed.contains("k=0") && killed.contains("w=143"),
        "{killed}"
    );
    // The right process ended, the other lives on.
    let alive = |what: &str| c.exec("node1", &["pgrep", "-fx", what]).status.success();
    wait_for("sleep 101 to end", Duration::from_secs(10), || {
        (!alive("sleep 101"))
            .then_some(())
            .ok_or("alive".to_string())
    });
    assert!(alive("sleep 102"), "kill %1 ended the wrong job");
    // brush updates its job table between command lines, in its own time.
    wait_for("jobs without sleep 101", Duration::from_secs(10), || {
        let jobs = t.run("jobs");
        (jobs.contains("sleep 102") && !jobs.contains("sleep 101"))
            .then_some(())
            .ok_or(jobs)
    });
    let killed = t.run("kill -KILL %2; wait; jobs; echo done");
    assert!(
        killed.trim().ends_with("done") && !killed.contains("Running"),
        "{killed}"
    );
    // lock / unlock a job; home of a job at home says so.
    t.line("sleep 103 &");
    let locked = t.run("sleep 0.3; lock %1");
    assert!(locked.contains("locked"), "{locked}");
    let row = |lock: bool| {
        wait_for("the lock in mosaic ps", Duration::from_secs(10), || {
            let ps = c.exec("node1", &[mosaic, "ps", "--json"]);
            let rows: Vec<serde_json::Value> =
                serde_json::from_slice(&ps.stdout).unwrap_or_default();
            rows.iter()
                .any(|r| r["cmd"] == "sleep 103" && r["lock"] == lock)
                .then_some(())
                .ok_or(format!("{rows:?}"))
        })
    };
    row(true);
    let unlocked = t.run("unlock %1");
    assert!(unlocked.contains("unlocked"), "{unlocked}");
    row(false);
    let home = t.run("home %1; echo h=$?");
    assert!(home.contains("at home") && home.contains("h=1"), "{home}");
    t.run("kill %1");
    // runon: mosrun-style placement, an ordinary job with its status.
    let ran = t.run("runon node2 mawk 'BEGIN { for (i = 0; i < 2000000; i++) s += 2; print \"sum\", s; exit 3 }'; echo r=$?");
    assert!(ran.contains("sum 4000000") && ran.contains("r=3"), "{ran}");
    assert!(
        c.log("node2").contains(mosaic_remote::log::GUEST_STARTED),
        "{}",
        c.log("node2")
    );
    drop(t);
    c.down();
}

/// The first run: no node on the machine, so mosh starts a local 2-node
/// cluster, says so in one line, and gives a prompt on node1.
#[test]
fn mosh_without_a_node_starts_a_local_cluster_and_enters_it() {
    mosaic_tests::require_root();
    // SAFETY: prctl with integer arguments only (we reap the node inits).
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let dir = std::env::temp_dir().join(format!("mosaic-test-mosh-first-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("home")).unwrap();
    /// Stops the cluster mosh started, whatever happens.
    struct Down(std::path::PathBuf);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = Command::new(bin("mosaic"))
                .args(["cluster", "down", "--state-dir"])
                .arg(self.0.join("cluster"))
                .output();
        }
    }
    let _down = Down(dir.clone());
    let session = format!("mosh-first-{}", std::process::id());
    // A PATH without the build directory: the README's first command then
    // the commands it mentions, as typed.
    let cmd = format!(
        "env -u MOSAIC_SOCKET -u MANPATH PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME={} MOSAIC_CLUSTER_DIR={} {}",
        dir.join("home").display(),
        dir.join("cluster").display(),
        bin("mosh").display()
    );
    let t = Terminal::start(session, &cmd);
    let screen = t.screen_shows("a prompt on node1", |s| s.contains("@node1:"));
    assert!(
        screen.contains("starting a local 2-node cluster"),
        "{screen}"
    );
    let nodes = t.run("nodes");
    assert!(
        nodes.contains("node1") && nodes.contains("node2"),
        "{nodes}"
    );
    // The README's next commands work as typed: on the PATH, with their
    // man pages and Tab completion.
    let ps = t.run("mosaic ps; echo status=$?");
    assert!(ps.contains("status=0") && ps.contains("WHERE"), "{ps}");
    let version = t.run("mosaic --version; mosaicd --version");
    assert!(
        version.contains("mosaic 0.") && version.contains("mosaicd 0."),
        "{version}"
    );
    let man = t.run("man -w mosaic-migrate");
    assert!(man.contains("mosaic-man/man1/mosaic-migrate.1"), "{man}");
    tmux(&["send-keys", "-t", &t.session, "-l", "mosaic migr"]);
    t.key("Tab");
    t.screen_shows("mosaic's commands completed", |s| {
        s.contains("mosaic migrate ")
    });
    t.key("C-c");
    readme_demo(&t, &dir.join("cluster"));
    t.line("exit");
    drop(t);
    drop(_down);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's openMosix demo, its lines typed as the README has them:
/// `[N] PID` for each job, whose PIDs `mosaic ps` lists, `jobs`, `kill %1`,
/// `wait $!` and `wait` work as in bash.
fn readme_demo(t: &Terminal, cluster: &std::path::Path) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let demo = readme
        .split_once("In mosh, type the openMosix demo")
        .and_then(|(_, rest)| rest.split_once("```sh\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("the README's demo block");
    let lines: Vec<&str> = demo
        .lines()
        .filter_map(|l| l.strip_prefix("root@node1:~# "))
        .collect();
    let at = |start: &str| {
        lines
            .iter()
            .copied()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("the README's demo has no `{start}` line: {lines:?}"))
    };
    let jobs_started = t.typed(at("for i in"));
    let started: Vec<(u32, i32)> = jobs_started
        .lines()
        .filter_map(|l| {
            let (n, pid) = l.trim().strip_prefix('[')?.split_once("] ")?;
            Some((n.parse().ok()?, pid.trim().parse().ok()?))
        })
        .collect();
    let numbers: Vec<u32> = started.iter().map(|j| j.0).collect();
    assert_eq!(numbers, (1..=10).collect::<Vec<_>>(), "{jobs_started}");
    let mps = t.typed(at("mps"));
    assert!(mps.contains("awk"), "{mps}");
    let nodes = t.typed(at("nodes"));
    assert!(nodes.contains("node2"), "{nodes}");
    // The cluster's table shows a process a second after it starts.
    let socket = cluster.join("node1/run/mosaicd.sock");
    let table = || -> Vec<i32> {
        let out = Command::new(bin("mosaic"))
            .arg("--socket")
            .arg(&socket)
            .args(["ps", "--json"])
            .output()
            .unwrap();
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        rows.iter()
            .filter(|r| r["cmd"].to_string().contains("awk"))
            .filter_map(|r| r["home_pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
            .collect()
    };
    wait_for(
        "the ten jobs in node1's table",
        Duration::from_secs(20),
        || {
            let awk = table();
            (awk.len() == 10).then_some(()).ok_or(format!("{awk:?}"))
        },
    );
    let ps = t.typed(at("mosaic ps"));
    let mut listed: Vec<i32> = ps
        .lines()
        .filter(|l| l.contains("awk"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let mut pids: Vec<i32> = started.iter().map(|j| j.1).collect();
    listed.sort_unstable();
    pids.sort_unstable();
    assert_eq!(
        listed, pids,
        "mosaic ps:\n{ps}\njobs started:\n{jobs_started}"
    );
    // All ten running, here or away (a placeholder sits stopped under a
    // tracer while its guest runs: they said Stopped).
    let jobs = t.typed(at("jobs"));
    assert_eq!(
        jobs.lines()
            .filter(|l| l.contains("awk") && l.contains("Running"))
            .count(),
        10,
        "{jobs}"
    );
    t.typed(at("kill %1"));
    wait_for("job 1 to end", Duration::from_secs(20), || {
        let awk = table();
        (!awk.contains(&started[0].1))
            .then_some(())
            .ok_or(format!("{awk:?}"))
    });
    t.typed(at("wait $!"));
    let waited = t.typed("echo waited=$?");
    assert!(waited.contains("waited=0"), "{waited}");
    let done = t.typed(at("wait; jobs"));
    assert!(!done.contains("Running"), "{done}");
    let screen = t.screen();
    assert!(!screen.contains("Stopped"), "no job stopped:\n{screen}");
}

/// Interpreters at their prompt, stopped, moved and brought back: bc (its
/// tcgetattr after SIGCONT smashed its stack when TCGETS copied glibc's
/// 60-byte termios back into the kernel's 36-byte one) and the python3 REPL
/// (it spun on `select`, answered ENOSYS, and flooded the node's log).
#[test]
fn bc_and_the_python_repl_moved_at_their_prompt_answer_and_exit_0() {
    let mut c = Cluster::up_with("mosh-repl", 2, 49946, &["--cpus-per-node", "1"]);
    let t = Terminal::open(&c, "repl");
    for (cmd, prompt, input) in [
        ("bc -lq", None, "scale=20; 4*a(1)"),
        ("python3 -q", Some(">>> "), "print(sum(range(10**6)))"),
    ] {
        // What the same input answers natively.
        let mut words = cmd.split(' ');
        let native = Command::new(words.next().unwrap())
            .args(words)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut p| {
                use std::io::Write;
                p.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{input}\n").as_bytes())?;
                p.wait_with_output()
            })
            .unwrap();
        let answer = String::from_utf8_lossy(&native.stdout).trim().to_string();
        assert!(!answer.is_empty(), "{cmd} natively: {}", text(&native));
        t.line(cmd);
        if let Some(p) = prompt {
            t.screen_shows("the prompt", |s| s.contains(p));
        } else {
            std::thread::sleep(Duration::from_millis(700));
        }
        t.line("1+2");
        // After this program's command line: bc's answer was still on the
        // screen when python3 had not answered yet (the Ctrl-Z then came
        // before its prompt, and `1+2` met the next input).
        t.screen_shows("an answer at home", |s| {
            s.rsplit(cmd)
                .next()
                .is_some_and(|after| after.lines().any(|l| l.trim() == "3"))
        });
        t.key("C-z");
        t.screen_shows("the job stopped", |s| s.contains("Stopped"));
        let moved = t.run("migrate %1 node2");
        assert!(moved.contains("now runs on node2"), "{moved}");
        t.line("fg");
        std::thread::sleep(Duration::from_millis(700));
        t.line(input);
        t.screen_shows(&format!("{cmd} answering {answer} on node2"), |s| {
            s.lines().any(|l| l.trim() == answer)
        });
        // Still away: its terminal reads and selects were served from home.
        let prog = cmd.split(' ').next().unwrap();
        // (`mosaic ps` is the gossiped table: up to a second old.)
        wait_for(
            &format!("{cmd} on node2 in mosaic ps"),
            Duration::from_secs(10),
            || {
                let ps = c.exec("node1", &[bin("mosaic").to_str().unwrap(), "ps", "--json"]);
                let rows: Vec<serde_json::Value> =
                    serde_json::from_slice(&ps.stdout).unwrap_or_default();
                rows.iter()
                    .any(|r| {
                        r["cmd"].as_str().is_some_and(|c| c.contains(prog)) && r["node"] == "node2"
                    })
                    .then_some(())
                    .ok_or(format!("{rows:?}"))
            },
        );
        t.key("C-d");
        let status = t.run("echo status=$?");
        assert!(
            status.contains("status=0"),
            "{cmd}: {status}\n{}",
            t.screen()
        );
    }
    assert!(c.log("node2").contains(mosaic_remote::log::GUEST_STARTED));
    // Nothing looped on a refused call.
    for node in ["node1", "node2"] {
        let log = c.log(node);
        assert!(
            log.lines().count() < 400,
            "{node}'s log grew to {} lines",
            log.lines().count()
        );
    }
    drop(t);
    c.down();
}

/// `time` and `times` in mosh count a job's CPU time on every node: the
/// home kernel's `RUSAGE_CHILDREN` counts only the placeholder's (a job
/// moved after a quarter of its work showed a quarter of its time), also
/// for a grandchild.
#[test]
fn time_and_times_in_mosh_count_the_cpu_a_job_used_on_another_node() {
    use std::io::{BufRead, BufReader, Read};
    let mut c = Cluster::up_with("mosh-time", 2, 58946, &["--cpus-per-node", "1"]);
    let job = c.dir.join("job.py");
    std::fs::write(
        &job,
        "import os, time\n\
         print('pid', os.getpid(), flush=True)\n\
         for i in range(24):\n\
         \x20   t = time.process_time()\n\
         \x20   while time.process_time() - t < 0.1:\n\
         \x20       sum(range(2000))\n\
         \x20   print('chunk', i, flush=True)\n\
         print('cpu', time.process_time(), flush=True)\n",
    )
    .unwrap();
    // Under a `sh` that waits for it (as make waits for its compilers):
    // its time reaches the shell through `sh`, which never moved.
    let script = format!("time sh -c 'python3 -u {}; true'; times", job.display());
    let mut run = c
        .command(&[
            "cluster",
            "exec",
            "node1",
            "--",
            bin("mosh").to_str().unwrap(),
            "-c",
            &script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = run.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let mut text = String::new();
    let mut pid = 0;
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(p) = line.strip_prefix("pid ") {
            pid = p.trim().parse().unwrap();
        }
        if line == "chunk 5\n" {
            // A quarter done at home; the rest on node2.
            c.migrate(pid, "node2");
        }
        text.push_str(&line);
    }
    assert!(run.wait().unwrap().success(), "{text}");
    let errors = errors.join().unwrap();
    assert!(
        c.log("node2").contains(mosaic_remote::log::GUEST_STARTED),
        "{text}"
    );
    // What the job itself counted (its CPU clock is carried across nodes).
    let cpu: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap();
    // bash's format: `0m2.412s`.
    let secs = |s: &str| -> f64 {
        let (m, rest) = s.trim().split_once('m').unwrap();
        m.parse::<f64>().unwrap() * 60.0 + rest.trim_end_matches('s').parse::<f64>().unwrap()
    };
    let field = |name: &str| -> f64 {
        errors
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('\t'))
            .map(secs)
            .unwrap_or_else(|| panic!("no {name} in: {errors}"))
    };
    let timed = field("user") + field("sys");
    // `times`: the shell's line, then its children's.
    let children = text.lines().last().unwrap_or_default();
    let (cu, cs) = children.split_once(' ').unwrap_or_else(|| panic!("{text}"));
    let timesed = secs(cu) + secs(cs);
    eprintln!("the job counted {cpu:.2} s; time says {timed:.2} s, times {timesed:.2} s");
    for (what, got) in [("time", timed), ("times", timesed)] {
        assert!(
            got >= cpu * 0.9 && got <= cpu * 1.1 + 0.3,
            "{what} says {got:.2} s of CPU for a job that used {cpu:.2} s:\n{errors}\n{text}"
        );
    }
    c.down();
}

/// `mosaic run -- CMD &` then `$!`: one PID, the program's own, in sh and
/// in mosh (mosaic run becomes the program; mosh knows a job's PID).
#[test]
fn the_pid_of_a_background_mosaic_run_is_the_programs_in_sh_and_in_mosh() {
    let mut c = Cluster::up("mosh-run-pid", 2, 60946);
    let mosaic = bin("mosaic");
    let script = format!(
        "{} run -- python3 -c 'import os; print(\"pid\", os.getpid())' & echo \"bang $!\"; wait $!; echo \"status $?\"",
        mosaic.display()
    );
    for shell in [std::path::PathBuf::from("sh"), bin("mosh")] {
        let out = c.exec("node1", &[shell.to_str().unwrap(), "-c", &script]);
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{}: no {name} in {text}", shell.display()))
                .to_string()
        };
        assert_eq!(field("bang"), field("pid"), "{}: {text}", shell.display());
        assert_eq!(field("status"), "0", "{}: {text}", shell.display());
    }
    c.down();
}

/// Four python3 threads computing beside one that reads the terminal.
const THREADED_JOB: &str = "import sys, threading
stop = threading.Event()
def spin():
    n = 0
    while not stop.is_set():
        n = (n * 31 + 7) % 1000003
for _ in range(4):
    threading.Thread(target=spin, daemon=True).start()
def reader():
    for line in sys.stdin:
        print('got', line.strip(), flush=True)
        if line.strip() == 'end':
            break
    stop.set()
r = threading.Thread(target=reader)
r.start()
print('ready', threading.active_count(), flush=True)
r.join()
print('done', flush=True)
";

/// A job of six threads typed into mosh and moved to node2, one thread
/// reading the terminal at home: a line typed reaches it; Ctrl-Z stops
/// the whole job at once (the reader's call in flight is interrupted for
/// the stop and made again after it); `bg` lets it run until the reader
/// reads the terminal in the background, which stops it by SIGTTIN as at
/// home; `fg` continues it; moved home while the reader waits, a line
/// typed meanwhile is not lost. The job prints what it prints at home
/// (checked there by hand: the same lines, in the same order).
#[test]
fn a_threaded_job_moved_away_stops_continues_and_comes_home_mid_read_losing_no_byte() {
    let mut c = Cluster::up_with("mosh-threads", 2, 50946, &["--cpus-per-node", "1"]);
    let job = c.dir.join("job.py");
    std::fs::write(&job, THREADED_JOB).unwrap();
    let t = Terminal::open(&c, "threads");
    let mosaic = bin("mosaic");
    let mosaic = mosaic.to_str().unwrap();
    t.line(&format!("python3 {}", job.display()));
    t.screen_shows("the job's threads", |s| s.contains("ready 6"));
    let ps = |pid: Option<i64>| {
        let out = c.exec("node1", &[mosaic, "ps", "--json"]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        rows.into_iter()
            .find(|r| {
                r["cmd"].as_str().is_some_and(|c| c.contains("job.py"))
                    && pid.is_none_or(|p| r["home_pid"] == p)
            })
            .ok_or(format!(
                "{rows:?}",
                rows = String::from_utf8_lossy(&out.stdout)
            ))
    };
    let pid = wait_for("the job in mosaic ps", Duration::from_secs(20), || {
        ps(None).and_then(|r| r["home_pid"].as_i64().ok_or("no pid".into()))
    });
    let pid_s = pid.to_string();
    let moved = c.exec("node1", &[mosaic, "migrate", &pid_s, "node2"]);
    assert!(moved.status.success(), "{}", text(&moved));
    let row = |node: &str, state: &str| {
        wait_for(
            &format!("the job {state} on {node}"),
            Duration::from_secs(20),
            || {
                ps(Some(pid)).and_then(|r| {
                    (r["node"] == node && (state.is_empty() || r["state"] == state))
                        .then_some(())
                        .ok_or(format!("{r}"))
                })
            },
        )
    };
    t.line("one");
    t.screen_shows("the line read away", |s| s.contains("got one"));
    // Its line whole on the screen first: a Ctrl-Z at once, natively too,
    // lets the shell's Stopped line overwrite it (1 of 3 tries).
    std::thread::sleep(Duration::from_millis(300));
    t.key("C-z");
    t.screen_shows("the job stopped", |s| s.contains("Stopped"));
    let status = t.run("echo status=$?");
    assert!(status.contains("status=148"), "{status}\n{}", t.screen());
    row("node2", "stopped");
    // Running in the background, its reader reads the terminal again:
    // SIGTTIN stops the job (with the signal blocked in its placeholder
    // thread, the read failed with EIO and the thread died of it).
    let bg = t.run("bg; echo bg=$?");
    assert!(bg.contains("bg=0"), "{bg}");
    wait_for("the SIGTTIN stop", Duration::from_secs(20), || {
        let log = c.log("node1");
        log.contains(&format!("stopped with its guest pid={pid} signal=SIGTTIN"))
            .then_some(())
            .ok_or(log)
    });
    row("node2", "stopped");
    // Told, and listed Stopped by `jobs`, as bash does (bash adds "(tty
    // input)").
    let jobs = t.run("jobs");
    assert!(
        jobs.contains("Stopped") && !jobs.contains("Running"),
        "{jobs}\n{}",
        t.screen()
    );
    // Typed once fg has said the job's command: the line editor reads the
    // terminal in chunks, so a line typed while it still reads `fg` goes
    // to its next prompt, not to the job (bash reads a byte at a time and
    // leaves it to the job).
    let said = |s: &str| s.lines().filter(|l| l.contains("job.py")).count();
    let before = said(&t.screen());
    t.line("fg");
    t.screen_shows("fg's line", |s| said(s) > before);
    t.line("two");
    t.screen_shows("the line read after fg", |s| s.contains("got two"));
    // Home while the reader waits in the terminal's read; a line typed as
    // it goes.
    let home = std::thread::scope(|s| {
        let home = s.spawn(|| c.exec("node1", &[mosaic, "migrate", &pid_s, "home"]));
        std::thread::sleep(Duration::from_millis(100));
        t.line("three");
        home.join().unwrap()
    });
    assert!(home.status.success(), "{}", text(&home));
    t.screen_shows("the line typed as it came home", |s| {
        s.contains("got three")
    });
    row("node1", "");
    t.line("end");
    t.screen_shows("the job's end", |s| s.contains("done"));
    let status = t.run("echo status=$?");
    assert!(status.contains("status=0"), "{status}\n{}", t.screen());
    // What it printed, in order (a line typed can land on the screen
    // inside one the job prints: a move's cancel may end a terminal write
    // early, which then writes the rest, as a signal may natively).
    let screen = t.screen();
    assert!(
        !screen.contains("Error") && !screen.contains("Traceback"),
        "{screen}"
    );
    let mut rest = screen.as_str();
    for want in [
        "ready 6",
        "got one",
        "got two",
        "got three",
        "got end",
        "done",
    ] {
        let at = rest
            .find(want)
            .unwrap_or_else(|| panic!("no {want:?} in order: {screen}"));
        rest = &rest[at + want.len()..];
    }
    drop(t);
    c.down();
}
