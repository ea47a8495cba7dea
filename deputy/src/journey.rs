//! The journey of one process away from home: sent to a node (again,
//! with the pages of its files, if that node can map them neither from its
//! own files nor through `/mfs`), served there until it ends or comes
//! home, and sent on when it comes home with somewhere to go next (asked
//! by home meanwhile, or suggested by the host that sent it back).
//!
//! The node it starts from provides the rest ([`Nodes`]): how to reach a
//! node, its registry of processes away, the CPU time a process used away.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use mosaic_ckpt::CaptureOptions;
use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::Link;
use tracing::{info, warn};

use crate::{Command, DeputyError, Outcome, Reply};

/// What a journey needs from the node it starts on.
pub trait Nodes: Clone + Send + 'static {
    /// A node to send a process to, as this node reaches it.
    type Target: Send + std::fmt::Debug + 'static;
    /// This node's name.
    fn me(&self) -> &str;
    /// The name of `target`.
    fn name(&self, target: &Self::Target) -> String;
    /// An authenticated link to `target`'s migration listener (the error
    /// says what could not be reached, for a human).
    fn connect(&self, target: &Self::Target) -> Result<Box<dyn Link>, String>;
    /// The node named `node`, if it can take a process.
    fn resolve(&self, node: &str) -> Result<Self::Target, String>;
    /// Its next capture's options: the CPU time it used away so far.
    fn capture_options(&self, pid: i32) -> CaptureOptions;
    /// Whether its host must not move it on its own (`mosaic lock`).
    fn locked(&self, pid: i32) -> bool;
    /// It runs on `node` as `guest_pid`; requests reach its deputy through
    /// `commands`; `stopped` is set while it is stopped (job control);
    /// `cmd`: its command line, read before it left (a placeholder's
    /// memory, where the kernel reads it from, is gone).
    fn away(
        &self,
        pid: i32,
        cmd: &str,
        node: &str,
        guest_pid: i32,
        commands: std::sync::mpsc::Sender<Command<Self::Target>>,
        stopped: Arc<AtomicBool>,
    );
    /// It no longer runs away (it ended, or runs at home again).
    fn not_away(&self, pid: i32);
    /// It runs at home again, having used `cpu` away from home in all.
    fn came_home(&self, pid: i32, cpu: CpuTime);
    /// Its guest ended, having used `cpu` away from home in all; its
    /// placeholder ends next.
    fn ended_away(&self, pid: i32, cpu: CpuTime);
}

/// Sends `pid` to `target`, serves it there and on every node it goes to
/// next, until it ends or stays at home. `reply` is answered once it runs
/// on `target` (or why it could not go); a move asked for later is
/// answered through its own reply.
pub fn journey<N: Nodes>(pid: i32, mut target: N::Target, mut reply: Reply, nodes: &N) {
    let cmd = mosaic_ckpt::procstat::cmdline(pid);
    loop {
        let name = nodes.name(&target);
        // Connects and sends it, captured with `opts`; the error is the
        // deputy's (`Ok`) or the connection's (`Err`).
        let send = |opts: &CaptureOptions| {
            let mut link = nodes.connect(&target).map_err(Err)?;
            crate::migrate::<N::Target>(pid, nodes.me(), &mut *link, opts, nodes.locked(pid))
                .map(|p| (link, p))
                .map_err(Ok)
        };
        let opts = nodes.capture_options(pid);
        let sent = match send(&opts) {
            Err(Ok(DeputyError::FilesMissing(why))) => {
                // Its files are not there (nor under the target's /mfs):
                // again, with their pages in the image.
                info!(pid, to = %name, %why, "sending the pages of its mapped files too");
                send(&CaptureOptions {
                    embed_files: true,
                    ..opts
                })
            }
            other => other,
        };
        let (mut link, mut placeholder) = match sent {
            Ok(sent) => sent,
            Err(e) => {
                let _ = reply.send(Err(e.map_or_else(|m| m, |d| d.to_string())));
                return;
            }
        };
        let _ = reply.send(Ok((Some(name.clone()), placeholder.guest_pid)));
        let (commands, incoming) = std::sync::mpsc::channel();
        nodes.away(
            pid,
            &cmd,
            &name,
            placeholder.guest_pid,
            commands,
            placeholder.stopped_flag(),
        );
        let ends = nodes.clone();
        placeholder.when_it_ends(Box::new(move |cpu| ends.ended_away(pid, cpu)));
        let served = placeholder.serve(&mut *link, &incoming);
        nodes.not_away(pid);
        // A request that came while it was coming home on its own (its
        // host sent it) is answered, not dropped ("the deputy thread
        // died"): it runs here now, and may be sent on.
        let late = incoming.try_recv().ok();
        if let Ok(Outcome::Home { cpu_elsewhere, .. }) = &served {
            nodes.came_home(pid, *cpu_elsewhere);
        }
        match served {
            Ok(Outcome::Home {
                reason,
                then: Some((next, next_reply)),
                ..
            }) => {
                info!(pid, %cmd, %reason, to = %nodes.name(&next), "came home; sending it on");
                target = next;
                reply = next_reply;
            }
            Ok(Outcome::Home { reason, .. })
                if let Some(Command::ComeHome { then, reply: asked }) = late =>
            {
                match then {
                    Some(next) => {
                        info!(pid, %reason, to = %nodes.name(&next), "came home; sending it on as asked meanwhile");
                        target = next;
                        reply = asked;
                    }
                    None => {
                        let _ = asked.send(Ok((None, pid)));
                        return;
                    }
                }
            }
            Ok(Outcome::Home {
                reason,
                then: None,
                next: Some(node),
                ..
            }) if node != nodes.me() => match nodes.resolve(&node) {
                Ok(next) => {
                    info!(pid, %reason, to = %node, "came home; its host sends it on");
                    target = next;
                    reply = std::sync::mpsc::channel().0;
                }
                Err(why) => {
                    info!(pid, %reason, %why, "came home; it stays (cannot send it on)");
                    return;
                }
            },
            Ok(outcome) => {
                info!(pid, ?outcome, "migrated process ended or came home");
                return;
            }
            Err(e) => {
                warn!(pid, error = %e, "migrated process failed");
                return;
            }
        }
    }
}
