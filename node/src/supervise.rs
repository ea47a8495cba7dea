//! Waiting for a child while passing signals on to it, as a shell or an
//! init does: `cluster exec`, a node's PID 1 and `mosaic restore` use it so
//! that stopping them never orphans what they started.

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The signals a supervisor passes on to its child.
pub fn forwarded_signals() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(s);
    }
    set
}

/// Makes `cmd` start with no signal blocked: std's `Command` keeps the
/// parent's mask, and a supervisor blocks the signals it waits for.
pub fn unblocked_in_child(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
    use std::os::unix::process::CommandExt;
    // SAFETY: sigprocmask is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .map_err(std::io::Error::from)
        })
    }
}

pub fn block(signals: &nix::sys::signal::SigSet) -> anyhow::Result<()> {
    use nix::sys::signal::{SigmaskHow, sigprocmask};
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(signals), None).context("cannot block signals")
}

/// Waits for `child` while passing on termination signals to it; with
/// `reap_orphans`, also reaps every other child (as PID 1 must). Returns the
/// child's exit code, or 128+N if signal N killed it, as a shell does.
/// `signals` (from [`forwarded_signals`]) must be blocked already, and
/// blocked before the child was spawned, so no SIGCHLD is missed.
pub fn supervise(
    child: Pid,
    signals: &nix::sys::signal::SigSet,
    reap_orphans: bool,
) -> anyhow::Result<i32> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    loop {
        // Reap first: the child may have exited before we started waiting.
        loop {
            let target = if reap_orphans { None } else { Some(child) };
            match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => return Ok(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                    return Ok(128 + sig as i32);
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {} // an orphan, reaped
            }
        }
        match signals.wait()? {
            Signal::SIGCHLD => {}
            sig => {
                let _ = kill(child, sig);
            }
        }
    }
}
