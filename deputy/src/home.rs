//! Coming home: the returning guest's image restored into the placeholder.

use crate::scratch::Scratch;
use crate::session::{Next, Placeholder};
use crate::{DeputyError, Outcome};
use mosaic_ckpt::RestoreOptions;
use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::{HomeMsg, ImageIn, Link, LinkExt, RemoteMsg, STALL};
use mosaic_proto::session::State;
use tracing::{info, warn};

impl<T> Placeholder<T> {
    /// Restores the returning guest into the placeholder. `None` if it
    /// could not (the guest then goes on where it was).
    pub(crate) fn take_back(
        &mut self,
        link: &mut dyn Link,
        reason: String,
        next: Option<String>,
        died: bool,
    ) -> Result<Option<Next<T>>, DeputyError> {
        let pid = self.tracee.pid.as_raw();
        self.trap();
        // Its other threads, from their workers: restored into too.
        if let Some(insn) = self.tracee.syscall_insn() {
            let back = crate::threads::hand_back(&self.crew, insn);
            self.tracee.threads.extend(back);
        }
        // Our own cancels met by injections are not the process's: queued
        // again on its release, they would kill it.
        self.tracee
            .deferred_signals
            .retain(|d| !crate::signals::own_cancel(d));
        for t in &mut self.tracee.threads {
            t.deferred_signals
                .retain(|d| !crate::signals::own_cancel(d));
        }
        let restored: Result<CpuTime, DeputyError> = if died {
            Err(DeputyError::Protocol("the home process was killed".into()))
        } else {
            let opts = RestoreOptions {
                keep_files: true,
                cpu_limit: mosaic_ckpt::CpuLimit::KeepOwn,
                ..Default::default()
            };
            link.set_stall_timeout(Some(STALL))?;
            let mut input = ImageIn::<RemoteMsg>::new(&mut *link);
            let r = mosaic_ckpt::restore_into(&mut self.tracee, &mut input, &opts, &mut |_, _| {});
            let drained = input.drain();
            let r = r
                .map_err(DeputyError::from)
                .and_then(|cpu| drained.map(|()| cpu).map_err(DeputyError::from));
            link.set_stall_timeout(None)?;
            r
        };
        let cpu_back = match restored {
            Ok(cpu) => cpu,
            Err(e) => {
                if died {
                    let _ = ImageIn::<RemoteMsg>::new(&mut *link).drain();
                }
                warn!(pid, error = %e, "could not take the process back; its guest goes on");
                self.quiet_timers();
                // Its memory may be gone: a new scratch on the next call.
                self.scratch = Scratch::default();
                link.send_msg(&HomeMsg::Stay {
                    error: e.to_string(),
                })?;
                if let Some((_, reply)) = self.asked.take() {
                    let _ = reply.send(Err(format!("could not take it back: {e}")));
                }
                return Ok(None);
            }
        };
        // What its guest (and any before it) used; the home kernel counts
        // the rest.
        let cpu_elsewhere = self.cpu_elsewhere.plus(cpu_back.since(self.cpu_sent));
        // It runs here from now on, whatever the link does: the remote
        // ends its guest when the link closes.
        let told = link.send_msg(&HomeMsg::Arrived);
        // The guest is ended over there; signals it caught meanwhile are ours.
        let signals = match told.and_then(|()| link.recv_msg::<RemoteMsg>()) {
            Ok(RemoteMsg::Gone { signals }) => signals,
            Ok(other) => {
                let why = State::Leaving.remote_may_send(&other).err();
                warn!(pid, ?why, "the session ended oddly; the process runs here");
                Vec::new()
            }
            Err(e) => {
                warn!(pid, error = %e, "the link broke as the process came home; it runs here");
                Vec::new()
            }
        };
        info!(pid, %reason, "{}", crate::log::CAME_HOME);
        let then = match self.asked.take() {
            Some((None, reply)) => {
                let _ = reply.send(Ok((None, pid)));
                None
            }
            Some((Some(next), reply)) => Some((next, reply)),
            None => None,
        };
        Ok(Some(Next::Release(
            Outcome::Home {
                reason,
                then,
                next,
                cpu_elsewhere,
            },
            signals,
        )))
    }
}
