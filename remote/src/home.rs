//! Going home: the guest captured where it is and streamed to its
//! deputy, which runs it (or says it cannot, and it goes on here).

use crate::session::Guest;
use crate::{RemoteError, not_handled};
use mosaic_ckpt::ptrace::Tracee;
use mosaic_proto::abi;
use mosaic_proto::migrate::{HomeMsg, Link, LinkExt, RemoteMsg};
use mosaic_proto::session::{State, home_name};
use mosaic_proto::syscalls::codec::errno::{EAGAIN, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS};
use std::collections::HashMap;
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
    at_call: Option<(u64, u32)>,
    reason: &str,
    next: Option<String>,
) -> Result<bool, RemoteError> {
    let pid = g.pid;
    // Threads waiting in a received notification stop only once it is
    // answered: the call at hand (made again at home), and those at home,
    // which home answers once cancelled (with their result if made, else
    // as interrupted, then made again at home too).
    let mut answers: HashMap<u32, u64> = at_call.map(|(id, tid)| (tid, id)).into_iter().collect();
    // Calls still being sent in pieces never ran at home: made again there.
    let given_up = crate::calls::give_up_outgoing(g, link)?;
    for (n, _) in &given_up {
        answers.insert(n.pid, n.id);
    }
    cancel_calls(g, link, &mut answers)?;
    let t = match g.stop_all(&mut answers) {
        Ok(t) => t,
        Err(e) => {
            // Never lost for it: home is told it cannot come, and it goes
            // on here. Its calls that waited for the stop are made again,
            // but the one that needed home fails, as when home says Stay
            // (made again, it would come straight back here).
            // Those given up are sent again (no stop is pending to take
            // a restart: answered so, the program would see -513).
            for (n, _) in &given_up {
                answers.remove(&n.pid);
            }
            for (_, id) in answers.drain() {
                let failed = at_call.is_some_and(|(at, _)| at == id);
                g.answer(id, if failed { EAGAIN } else { ERESTARTNOINTR });
            }
            warn!(guest_pid = pid.as_raw(), error = %e, reason, "could not stop the guest to send it home; it goes on here");
            link.send_msg(&RemoteMsg::Returning {
                reason: reason.to_string(),
                next,
            })?;
            link.send_msg(&RemoteMsg::CannotReturn {
                error: format!("could not stop it: {e}"),
            })?;
            link.set_stall_timeout(Some(mosaic_proto::migrate::STALL))?;
            let stayed = stay(g, link, None);
            link.set_stall_timeout(None)?;
            stayed?;
            for (n, marshal) in &given_up {
                crate::calls::send(g, link, n, marshal)?;
            }
            return Ok(false);
        }
    };
    tracing::info!(
        guest_pid = pid.as_raw(),
        reason,
        threads = 1 + t.threads.len(),
        "{}",
        crate::log::SENDING_HOME
    );
    // A home that stops answering must not keep this thread forever: the
    // error ends the guest here, and home, if it took the image, runs it.
    link.set_stall_timeout(Some(mosaic_proto::migrate::STALL))?;
    let went = go_home_stopped(g, t, link, at_call.map(|(_, tid)| tid), reason, next);
    link.set_stall_timeout(None)?;
    went
}

/// Asks home to cancel every call in flight and takes the answers: a
/// call made is answered here; one interrupted at home is left for
/// [`Guest::stop_all`] to answer (by its thread here, in `answers`).
fn cancel_calls(
    g: &Guest,
    link: &mut dyn Link,
    answers: &mut HashMap<u32, u64>,
) -> Result<(), RemoteError> {
    g.cancel_calls(link)?;
    while !g.calls.borrow().is_empty() {
        match crate::receive(link, State::InCall)? {
            HomeMsg::SyscallResult {
                tid,
                ret: ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND,
                ..
            } => {
                let n = crate::calls::withdraw(g, tid)?;
                answers.insert(n.pid, n.id);
            }
            HomeMsg::SyscallResult { tid, ret, outbufs } => {
                crate::calls::finish(g, link, tid, ret, outbufs)?;
            }
            HomeMsg::SyscallPart { tid, outbufs } => crate::calls::part(g, tid, outbufs)?,
            HomeMsg::Signal { signal } => g.signal(signal),
            HomeMsg::ThreadSignal { tid, signal } => g.signal_thread(tid, signal),
            HomeMsg::ComeHome => {}
            other => return Err(not_handled(home_name(&other))),
        }
    }
    Ok(())
}

pub(crate) fn go_home_stopped(
    g: &Guest,
    mut t: Tracee,
    link: &mut dyn Link,
    at_call: Option<u32>,
    reason: &str,
    next: Option<String>,
) -> Result<bool, RemoteError> {
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
            threads: true,
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
    stay(g, link, Some((t, at_call)))
}

/// Home's answer to a returning guest: `Arrived` (it runs at home now:
/// ended here, true) or `Stay` (it goes on here, false). `stopped`: the
/// guest as stopped for its capture, and the thread whose call needed
/// home; `None` if it could not be stopped (it never stopped).
fn stay(
    g: &Guest,
    link: &mut dyn Link,
    stopped: Option<(Tracee, Option<u32>)>,
) -> Result<bool, RemoteError> {
    let pid = g.pid;
    // Signals home sends meanwhile are held: the guest is captured.
    let mut held: Vec<i32> = Vec::new();
    loop {
        match crate::receive(link, State::Arriving)? {
            HomeMsg::Signal { signal } => held.push(signal),
            // Held for the process: home sends them on to its PID (the
            // thread they were for is lost in this narrow window).
            HomeMsg::ThreadSignal { signal, .. } => held.push(signal),
            // Asked before home saw it coming: it is coming.
            HomeMsg::ComeHome => {}
            HomeMsg::Arrived => {
                let Some((t, _)) = stopped else {
                    // Home cannot restore what it never got.
                    return Err(RemoteError::Protocol(
                        "home says a guest it got no image of arrived".into(),
                    ));
                };
                // Each thread we trace is reaped (by us, its tracer)
                // before the process can be.
                if let Err(e) = t.kill() {
                    warn!(error = %e, "could not end the guest that went home");
                }
                // Those it caught while being captured travelled in the image.
                link.send_msg(&RemoteMsg::Gone { signals: held })?;
                tracing::info!(guest_pid = pid.as_raw(), "the guest went home");
                return Ok(true);
            }
            HomeMsg::Stay { error } => {
                warn!(%error, "home could not take the guest back; it goes on here");
                if let Some((t, at_call)) = stopped {
                    if let Some(tid) = at_call {
                        // The call that needed home fails, in its thread.
                        let caller = if tid == pid.as_raw().unsigned_abs() {
                            Some(&t)
                        } else {
                            t.threads
                                .iter()
                                .find(|th| th.pid.as_raw().unsigned_abs() == tid)
                        };
                        if let Some(c) = caller {
                            let mut regs = c.regs()?;
                            regs.rax = abi::reg_long(EAGAIN);
                            regs.orig_rax = u64::MAX;
                            c.set_regs(&regs)?;
                        }
                    }
                    // Deferred signals are sent again on release.
                    t.release()?;
                }
                for sig in held {
                    g.signal(sig);
                }
                return Ok(false);
            }
            other => return Err(not_handled(home_name(&other))),
        }
    }
}
