//! Going home: the guest captured where it is and streamed to its
//! deputy, which runs it (or says it cannot, and it goes on here).

use crate::session::Guest;
use crate::{RemoteError, not_handled};
use mosaic_ckpt::ptrace::Tracee;
use mosaic_proto::abi;
use mosaic_proto::migrate::{HomeMsg, Link, LinkExt, RemoteMsg};
use mosaic_proto::session::{State, home_name};
use mosaic_proto::syscalls::codec::errno::EAGAIN;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use tracing::warn;

/// Sends the guest home: stopped and captured where it is (for a call that
/// must run at home, just before that call, so home redoes it) and
/// streamed to the deputy, which restores it into the placeholder. Returns
/// true once home has it (the guest is then ended here), false if home
/// could not take it back (the guest goes on here; a call that needed home
/// fails with EAGAIN).
pub(crate) fn go_home(
    g: &Guest,
    link: &mut dyn Link,
    at_call: Option<u64>,
    reason: &str,
    next: Option<String>,
) -> Result<bool, RemoteError> {
    let pid = g.pid;
    let t = g.stop(at_call)?;
    tracing::info!(
        guest_pid = pid.as_raw(),
        reason,
        "{}",
        crate::log::SENDING_HOME
    );
    // A home that stops answering must not keep this thread forever: the
    // error ends the guest here, and home, if it took the image, runs it.
    link.set_stall_timeout(Some(mosaic_proto::migrate::STALL))?;
    let went = go_home_stopped(g, t, link, at_call, reason, next);
    link.set_stall_timeout(None)?;
    went
}

pub(crate) fn go_home_stopped(
    g: &Guest,
    mut t: Tracee,
    link: &mut dyn Link,
    at_call: Option<u64>,
    reason: &str,
    next: Option<String>,
) -> Result<bool, RemoteError> {
    let pid = g.pid;
    // Its image carries no pages of the files it maps shared: they are
    // home's, once written back.
    g.write_back();
    link.send_msg(&RemoteMsg::Returning {
        reason: reason.to_string(),
        next,
    })?;
    let mut out = mosaic_proto::migrate::ImageOut::<RemoteMsg>::new(&mut *link);
    let captured = mosaic_ckpt::capture_traced(
        &mut t,
        &mosaic_ckpt::CaptureOptions {
            files_from: g.files_from.clone(),
            cpu_elsewhere: g.cpu.elsewhere(),
            ..Default::default()
        },
        &mut out,
        &mut |_, _| {},
    );
    match captured {
        Ok(_) => out.finish()?,
        Err(e) => {
            drop(out);
            warn!(error = %e, "could not capture the guest to send it home");
            link.send_msg(&RemoteMsg::CannotReturn {
                error: e.to_string(),
            })?;
        }
    }
    // Signals home sends meanwhile are held: the guest is captured.
    let mut held: Vec<i32> = Vec::new();
    loop {
        match crate::receive(link, State::Arriving)? {
            HomeMsg::Signal { signal } => held.push(signal),
            // Asked before home saw it coming: it is coming.
            HomeMsg::ComeHome => {}
            HomeMsg::Arrived => {
                g.signal(libc::SIGKILL);
                while !matches!(
                    waitpid(pid, Some(WaitPidFlag::__WALL)),
                    Ok(WaitStatus::Signaled(..) | WaitStatus::Exited(..)) | Err(_)
                ) {}
                // Those it caught while being captured travelled in the image.
                link.send_msg(&RemoteMsg::Gone { signals: held })?;
                tracing::info!(guest_pid = pid.as_raw(), "the guest went home");
                return Ok(true);
            }
            HomeMsg::Stay { error } => {
                warn!(%error, "home could not take the guest back; it goes on here");
                if at_call.is_some() {
                    let mut regs = t.regs()?;
                    regs.rax = abi::reg_long(EAGAIN);
                    regs.orig_rax = u64::MAX;
                    t.set_regs(&regs)?;
                }
                // Deferred signals are sent again on release.
                t.release()?;
                for sig in held {
                    g.signal(sig);
                }
                return Ok(false);
            }
            other => return Err(not_handled(home_name(&other))),
        }
    }
}
