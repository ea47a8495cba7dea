//! The cluster builtins: `nodes`, `mps`, `migrate`, `home`, `lock`,
//! `unlock`, and the notes printed before each prompt. (`runon` is a shell
//! function over `mosaic run`, see [`PRELUDE`], so that its job is an
//! ordinary job: Ctrl-Z, `fg`, `$?`.)
//!
//! A job is named as in bash (`%1`, `%+`, `%-`, `%%`) or by PID. A job the
//! interpreter runs as a background list (`cmd &` in brush 0.5) has no
//! process group the shell knows; `mps` shows its processes by PID.

use std::io::Write;
use std::time::Duration;

use brush_core::builtins::Command;
use brush_core::{ExecutionContext, ExecutionExitCode, ExecutionResult, ShellExtensions};
use mosaic_proto::{ControlRequest, ControlResponse};

use crate::session::{self, Session};

/// Shell code every mosh runs first.
pub const PRELUDE: &str = r#"
runon() {
    if [ "$#" -lt 2 ]; then
        echo "usage: runon NODE COMMAND [ARGS...]  (run COMMAND on NODE, as mosrun did)" >&2
        return 2
    fi
    local node="$1"
    shift
    "$MOSH_MOSAIC" run --node "$node" -- "$@"
}
complete -W '$(__mosh_nodes)' runon migrate
"#;

/// The builtins to register, by name.
pub fn all<SE: ShellExtensions>() -> Vec<(&'static str, brush_core::builtins::Registration<SE>)> {
    use brush_core::builtins::builtin;
    vec![
        ("nodes", builtin::<Nodes, SE>()),
        ("mps", builtin::<Mps, SE>()),
        ("migrate", builtin::<Migrate, SE>()),
        ("home", builtin::<Home, SE>()),
        ("lock", builtin::<Lock, SE>()),
        ("unlock", builtin::<Unlock, SE>()),
        ("__mosh_notes", builtin::<Notes, SE>()),
        ("__mosh_nodes", builtin::<NodeNames, SE>()),
    ]
}

fn exit(code: u8) -> ExecutionResult {
    ExecutionResult::new(code)
}

/// The session, or a message saying why there is none.
fn session_or_complain<SE: ShellExtensions>(
    ctx: &ExecutionContext<'_, SE>,
) -> Option<&'static Session> {
    let s = session::get();
    if s.is_none() {
        let _ = writeln!(
            ctx.stderr(),
            "{}: mosh runs on no mosaic node (start one: mosaic cluster up, or mosaicd)",
            ctx.command_name
        );
    }
    s
}

/// Runs a blocking daemon request off the interpreter's thread.
async fn ask(
    session: &'static Session,
    req: ControlRequest,
    timeout: Duration,
) -> Result<ControlResponse, String> {
    tokio::task::spawn_blocking(move || session.request(&req, timeout))
        .await
        .map_err(|e| format!("the request failed: {e}"))?
}

/// The processes a job or PID names: a PID; or a job's process group (all
/// the shell's children in it), else its one known PID.
fn resolve<SE: ShellExtensions>(
    ctx: &mut ExecutionContext<'_, SE>,
    session: &Session,
    target: &str,
) -> Result<Vec<i32>, String> {
    if !target.starts_with('%') {
        return target
            .parse::<i32>()
            .ok()
            .filter(|&p| p > 0)
            .map(|p| vec![p])
            .ok_or_else(|| format!("{target}: not a PID or a job (%1, %+, %-)"));
    }
    let job = ctx
        .shell
        .jobs_mut()
        .resolve_job_spec(target)
        .ok_or_else(|| format!("{target}: no such job"))?;
    if let Some(pgrp) = job.process_group_id() {
        let mut pids: Vec<i32> = session
            .children()
            .into_iter()
            .filter(|(_, c)| c.pgrp == pgrp)
            .map(|(pid, _)| pid)
            .collect();
        pids.sort();
        if !pids.is_empty() {
            return Ok(pids);
        }
    }
    if let Some(pid) = job.representative_pid() {
        return Ok(vec![pid]);
    }
    Err(format!(
        "{target}: the shell runs this job as a background list and knows no PID of it: give a PID (mps shows them)"
    ))
}

/// Moves each process of `target` to `node` ("home" and "balance" too).
async fn move_target<SE: ShellExtensions>(
    mut ctx: ExecutionContext<'_, SE>,
    target: &str,
    node: &str,
) -> ExecutionResult {
    let Some(session) = session_or_complain(&ctx) else {
        return exit(1);
    };
    let pids = match resolve(&mut ctx, session, target) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(ctx.stderr(), "{}: {e}", ctx.command_name);
            return exit(1);
        }
    };
    let mut failed = false;
    for pid in pids {
        let req = ControlRequest::Migrate {
            pid,
            node: node.to_string(),
        };
        // A large process takes a while to move.
        match ask(session, req, Duration::from_secs(600)).await {
            Ok(ControlResponse::Migrated { pid, node, .. }) => {
                let _ = writeln!(ctx.stdout(), "process {pid} now runs on {node}");
            }
            Ok(ControlResponse::Stays { pid, node }) => {
                let _ = writeln!(ctx.stdout(), "process {pid} stays on {node}");
            }
            Ok(other) => {
                failed = true;
                let _ = writeln!(
                    ctx.stderr(),
                    "{}: unexpected answer {other:?}",
                    ctx.command_name
                );
            }
            Err(e) => {
                failed = true;
                let _ = writeln!(ctx.stderr(), "{}: process {pid}: {e}", ctx.command_name);
            }
        }
    }
    exit(u8::from(failed))
}

/// Show the cluster's nodes (as `mosaic nodes`).
#[derive(clap::Parser)]
#[command(name = "nodes")]
pub struct Nodes {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl Command for Nodes {
    type Error = brush_core::Error;

    async fn execute<SE: ShellExtensions>(
        &self,
        ctx: ExecutionContext<'_, SE>,
    ) -> Result<ExecutionResult, Self::Error> {
        let Some(session) = session_or_complain(&ctx) else {
            return Ok(exit(1));
        };
        let mut args = vec![
            "--socket",
            session.socket.to_str().unwrap_or_default(),
            "nodes",
        ];
        if self.json {
            args.push("--json");
        }
        let mosaic = session.mosaic.to_string_lossy().into_owned();
        let cmd = brush_core::commands::compose_std_command(&ctx, &mosaic, "mosaic", &args, false)?;
        let status = tokio::process::Command::from(cmd).status().await;
        Ok(match status {
            Ok(s) => exit(s.code().unwrap_or(1) as u8),
            Err(e) => {
                let _ = writeln!(ctx.stderr(), "nodes: cannot run {mosaic}: {e}");
                exit(127)
            }
        })
    }
}

/// Show this shell's jobs and processes and where each runs.
#[derive(clap::Parser)]
#[command(name = "mps")]
pub struct Mps {}

impl Command for Mps {
    type Error = brush_core::Error;

    async fn execute<SE: ShellExtensions>(
        &self,
        ctx: ExecutionContext<'_, SE>,
    ) -> Result<ExecutionResult, Self::Error> {
        let Some(session) = session_or_complain(&ctx) else {
            return Ok(exit(1));
        };
        let procs = match ask(session, ControlRequest::Ps, Duration::from_secs(10)).await {
            Ok(ControlResponse::Ps { procs }) => procs,
            Ok(other) => {
                let _ = writeln!(ctx.stderr(), "mps: unexpected answer {other:?}");
                return Ok(exit(1));
            }
            Err(e) => {
                let _ = writeln!(ctx.stderr(), "mps: {e}");
                return Ok(exit(1));
            }
        };
        // Jobs by process group, for the JOB column.
        let jobs: Vec<(usize, Option<i32>, Option<i32>)> = ctx
            .shell
            .jobs()
            .jobs
            .iter()
            .map(|j| (j.id, j.process_group_id(), j.representative_pid()))
            .collect();
        let mut children: Vec<_> = session.children().into_iter().collect();
        children.sort_by_key(|(pid, _)| *pid);
        let mut out = ctx.stdout();
        let _ = writeln!(
            out,
            "{:<5} {:>7} {:<8} {:<10} {:>6}  COMMAND",
            "JOB", "PID", "WHERE", "STATE", "%CPU"
        );
        for (pid, child) in children {
            let job = jobs
                .iter()
                .find(|(_, pgrp, rep)| *pgrp == Some(child.pgrp) || *rep == Some(pid))
                .map_or("-".to_string(), |(id, _, _)| format!("[{id}]"));
            let row = procs
                .iter()
                .find(|p| p.home == session.node && p.home_pid == pid);
            let (node, state, cpu, cmd) = match row {
                Some(p) => (p.node.clone(), p.state.clone(), p.cpu, p.cmd.clone()),
                None => {
                    let st = mosaic_node::procstat::stat(pid);
                    (
                        session.node.clone(),
                        st.as_ref()
                            .map_or("ended", |s| mosaic_node::procstat::state_name(s.state))
                            .to_string(),
                        st.map_or(0.0, |s| s.cpu),
                        child.cmd.clone(),
                    )
                }
            };
            let _ = writeln!(
                out,
                "{job:<5} {pid:>7} {node:<8} {state:<10} {cpu:>6.1}  {cmd}"
            );
        }
        Ok(exit(0))
    }
}

/// Move a job or process to a node (`balance`: where it runs best).
#[derive(clap::Parser)]
#[command(name = "migrate")]
pub struct Migrate {
    /// A job (%1, %+, %-) or a PID.
    target: String,
    /// A node's name, `home`, or `balance`.
    node: String,
}

impl Command for Migrate {
    type Error = brush_core::Error;

    async fn execute<SE: ShellExtensions>(
        &self,
        ctx: ExecutionContext<'_, SE>,
    ) -> Result<ExecutionResult, Self::Error> {
        Ok(move_target(ctx, &self.target, &self.node).await)
    }
}

/// Bring a job or process home.
#[derive(clap::Parser)]
#[command(name = "home")]
pub struct Home {
    /// A job (%1, %+, %-) or a PID; the current job if none.
    target: Option<String>,
}

impl Command for Home {
    type Error = brush_core::Error;

    async fn execute<SE: ShellExtensions>(
        &self,
        ctx: ExecutionContext<'_, SE>,
    ) -> Result<ExecutionResult, Self::Error> {
        let target = self.target.clone().unwrap_or_else(|| "%+".to_string());
        Ok(move_target(ctx, &target, "home").await)
    }
}

/// Lock a job or process where it is (the balancer never moves it).
#[derive(clap::Parser)]
#[command(name = "lock")]
pub struct Lock {
    /// A job (%1, %+, %-) or a PID.
    target: String,
}

/// Let the balancer move a job or process again.
#[derive(clap::Parser)]
#[command(name = "unlock")]
pub struct Unlock {
    /// A job (%1, %+, %-) or a PID.
    target: String,
}

async fn set_lock<SE: ShellExtensions>(
    mut ctx: ExecutionContext<'_, SE>,
    target: &str,
    lock: bool,
) -> ExecutionResult {
    let Some(session) = session_or_complain(&ctx) else {
        return exit(1);
    };
    let pids = match resolve(&mut ctx, session, target) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(ctx.stderr(), "{}: {e}", ctx.command_name);
            return exit(1);
        }
    };
    let mut failed = false;
    for pid in pids {
        session.set_user_lock(pid, lock);
        let req = ControlRequest::Manage {
            pid,
            lock,
            hint: Default::default(),
        };
        match ask(session, req, Duration::from_secs(10)).await {
            Ok(_) => {
                let word = if lock { "locked" } else { "unlocked" };
                let _ = writeln!(ctx.stdout(), "process {pid} {word}");
            }
            Err(e) => {
                failed = true;
                let _ = writeln!(ctx.stderr(), "{}: process {pid}: {e}", ctx.command_name);
            }
        }
    }
    exit(u8::from(failed))
}

impl Command for Lock {
    type Error = brush_core::Error;

    async fn execute<SE: ShellExtensions>(
        &self,
        ctx: ExecutionContext<'_, SE>,
    ) -> Result<ExecutionResult, Self::Error> {
        Ok(set_lock(ctx, &self.target, true).await)
    }
}

impl Command for Unlock {
    type Error = brush_core::Error;

    async fn execute<SE: ShellExtensions>(
        &self,
        ctx: ExecutionContext<'_, SE>,
    ) -> Result<ExecutionResult, Self::Error> {
        Ok(set_lock(ctx, &self.target, false).await)
    }
}

/// Prints the queued job notes (`[1]+ moved to node2`); run before each
/// prompt through PROMPT_COMMAND.
#[derive(clap::Parser)]
#[command(name = "__mosh_notes")]
pub struct Notes {}

impl Command for Notes {
    type Error = brush_core::Error;

    async fn execute<SE: ShellExtensions>(
        &self,
        ctx: ExecutionContext<'_, SE>,
    ) -> Result<ExecutionResult, Self::Error> {
        let Some(session) = session::get() else {
            return Ok(exit(0));
        };
        let jobs = &ctx.shell.jobs().jobs;
        let mut err = ctx.stderr();
        for note in session.take_notes() {
            let job = jobs.iter().find(|j| {
                j.process_group_id() == Some(note.pgrp) || j.representative_pid() == Some(note.pid)
            });
            let _ = match job {
                Some(j) => writeln!(err, "[{}]{} {}", j.id, j.annotation(), note.what),
                None => writeln!(err, "[pid {}] {}", note.pid, note.what),
            };
        }
        Ok(ExecutionResult::from(ExecutionExitCode::Success))
    }
}

/// Prints the names of the live nodes, one per line, and `home` and
/// `balance` (Tab completion of `runon` and `migrate`).
#[derive(clap::Parser)]
#[command(name = "__mosh_nodes")]
pub struct NodeNames {}

impl Command for NodeNames {
    type Error = brush_core::Error;

    async fn execute<SE: ShellExtensions>(
        &self,
        ctx: ExecutionContext<'_, SE>,
    ) -> Result<ExecutionResult, Self::Error> {
        let Some(session) = session::get() else {
            return Ok(exit(1));
        };
        let Ok(ControlResponse::Nodes { nodes }) =
            ask(session, ControlRequest::Nodes, Duration::from_secs(2)).await
        else {
            return Ok(exit(1));
        };
        let mut out = ctx.stdout();
        for n in nodes
            .iter()
            .filter(|n| n.state == mosaic_proto::NodeState::Alive)
        {
            let _ = writeln!(out, "{}", n.name);
        }
        let _ = writeln!(out, "home\nbalance");
        Ok(exit(0))
    }
}
