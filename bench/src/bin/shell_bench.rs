//! mosh beside bash, in a real terminal (a pty this bench answers like a
//! terminal emulator would): time from start to the first prompt, and the
//! round trip of `true` (Enter to the next prompt), and of `/bin/true` (a
//! process started and waited for: what mosh manages). Each shell runs on this
//! machine unmanaged, and on node1 of a local cluster (mosh then manages
//! every process it starts; both shells pay `mosaic cluster exec`).
//!
//! `cargo build --release && target/release/shell-bench` (root, for the
//! cluster). Medians of many runs, with the ratio mosh/bash.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mosaic_bench::LocalCluster;

/// Every shell's prompt, set by its start-up file.
const PROMPT: &str = "READY> ";
const STARTS: usize = 15;
const ROUND_TRIPS: usize = 200;

fn main() -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("target dir")?;
    let mosh = dir.join("mosh");
    if !mosh.exists() {
        bail!(
            "{} is missing: run `cargo build --release` first",
            mosh.display()
        );
    }
    let work = std::env::temp_dir().join(format!("mosaic-shell-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    // Start-up files that set the prompt and nothing else.
    std::fs::write(work.join(".moshrc"), format!("PS1='{PROMPT}'\n"))?;
    std::fs::write(work.join("bashrc"), format!("PS1='{PROMPT}'\n"))?;
    let bashrc = work.join("bashrc");
    let bash: Vec<String> = vec![
        "bash".into(),
        "--noprofile".into(),
        "--rcfile".into(),
        bashrc.display().to_string(),
        "-i".into(),
    ];
    let mosh_here: Vec<String> = vec![mosh.display().to_string(), "--no-cluster".into()];
    println!(
        "{:<26} {:>16} {:>18} {:>22}   (medians)",
        "", "start to prompt", "`true` round trip", "`/bin/true` round trip"
    );
    let mut rows = Vec::new();
    rows.push(("bash, this machine", measure(&bash, &work)?));
    rows.push(("mosh, this machine", measure(&mosh_here, &work)?));
    let c = LocalCluster::up(&work.join("cluster"), 2, 47946, &[])?;
    let in_node = |argv: &[String]| -> Vec<String> {
        let mut all = vec![
            c.mosaic.display().to_string(),
            "cluster".into(),
            "exec".into(),
            "--state-dir".into(),
            c.dir.display().to_string(),
            "node1".into(),
            "--".into(),
        ];
        all.extend(argv.iter().cloned());
        all
    };
    rows.push(("bash, on node1", measure(&in_node(&bash), &work)?));
    rows.push((
        "mosh, on node1 (managed)",
        measure(&in_node(&[mosh.display().to_string()]), &work)?,
    ));
    drop(c);
    for (name, [start, trip, exec]) in &rows {
        println!(
            "{name:<26} {:>13.2} ms {:>15.1} us {:>19.1} us",
            start.as_secs_f64() * 1e3,
            trip.as_secs_f64() * 1e6,
            exec.as_secs_f64() * 1e6
        );
    }
    let ratio =
        |a: usize, b: usize, i: usize| rows[a].1[i].as_secs_f64() / rows[b].1[i].as_secs_f64();
    for (what, m, b) in [("on this machine", 1, 0), ("on node1       ", 3, 2)] {
        println!(
            "mosh/bash {what}: start {:.2}x, `true` {:.2}x, `/bin/true` {:.2}x",
            ratio(m, b, 0),
            ratio(m, b, 1),
            ratio(m, b, 2)
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Median start-to-prompt time over [`STARTS`] starts, and median round
/// trips of `true` and `/bin/true` over [`ROUND_TRIPS`] each in one session.
fn measure(argv: &[String], home: &Path) -> anyhow::Result<[Duration; 3]> {
    let mut starts = Vec::new();
    for _ in 0..STARTS {
        let t = Instant::now();
        let mut term = Terminal::spawn(argv, home)?;
        term.until_prompt(0)?;
        starts.push(t.elapsed());
        term.close();
    }
    let mut term = Terminal::spawn(argv, home)?;
    term.until_prompt(0)?;
    let mut trip = |line: &str| -> anyhow::Result<Duration> {
        let mut trips = Vec::new();
        for _ in 0..ROUND_TRIPS {
            let t = Instant::now();
            term.send(line)?;
            // The next prompt comes after the line break that ends the input.
            term.until_prompt(1)?;
            trips.push(t.elapsed());
        }
        Ok(median(&mut trips))
    };
    let builtin = trip("true\r")?;
    let external = trip("/bin/true\r")?;
    term.close();
    Ok([median(&mut starts), builtin, external])
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A shell on a pty.
struct Terminal {
    master: std::fs::File,
    child: std::process::Child,
    seen: Vec<u8>,
}

impl Terminal {
    fn spawn(argv: &[String], home: &Path) -> anyhow::Result<Terminal> {
        use std::os::unix::process::CommandExt;
        let size = nix::pty::Winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None)?;
        let slave: OwnedFd = pty.slave;
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env("HOME", home)
            .env("TERM", "xterm")
            .env_remove("MOSAIC_SOCKET")
            .current_dir(home)
            .stdin(slave.try_clone()?)
            .stdout(slave.try_clone()?)
            .stderr(slave);
        // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork
        // and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", argv[0]))?;
        Ok(Terminal {
            master: std::fs::File::from(pty.master),
            child,
            seen: Vec::new(),
        })
    }

    fn send(&mut self, keys: &str) -> anyhow::Result<()> {
        self.seen.clear();
        self.master.write_all(keys.as_bytes())?;
        Ok(())
    }

    /// Reads until the prompt appears after `breaks` line breaks of what
    /// was read since the last [`Terminal::send`], answering cursor
    /// position queries as a terminal does.
    fn until_prompt(&mut self, breaks: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 4096];
        loop {
            let after = self
                .seen
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .nth(breaks.wrapping_sub(1))
                .map_or(0, |(i, _)| i + 1);
            let after = if breaks == 0 { 0 } else { after };
            if (breaks == 0 || after > 0)
                && self.seen[after..]
                    .windows(PROMPT.len())
                    .any(|w| w == PROMPT.as_bytes())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "no prompt within 20 s; the terminal shows {:?}",
                    String::from_utf8_lossy(&self.seen)
                );
            }
            if !readable(&self.master, 1000)? {
                continue;
            }
            let n = self.master.read(&mut buf)?;
            if n == 0 {
                bail!("the shell closed its terminal");
            }
            let got = &buf[..n];
            // "Where is the cursor?" (reedline asks): top left.
            for _ in 0..got.windows(4).filter(|w| w == b"\x1b[6n").count() {
                self.master.write_all(b"\x1b[1;1R")?;
            }
            self.seen.extend_from_slice(got);
        }
    }

    fn close(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `f` has data within `ms` milliseconds.
fn readable(f: &std::fs::File, ms: u16) -> anyhow::Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // SAFETY: the descriptor lives as long as `f`, beyond this poll.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(f.as_raw_fd()) };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    Ok(poll(&mut fds, PollTimeout::from(ms))? > 0)
}
