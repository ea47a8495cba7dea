//! The cluster builtins: `nodes`, `mps`, `migrate`, `home`, `lock`,
//! `unlock`, and the notes printed before each prompt. (`runon` is a shell
//! function over `mosaic run`, see [`PRELUDE`], so that its job is an
//! ordinary job: Ctrl-Z, `fg`, `$?`.)
//!
//! A job is named as in bash (`%1`, `%+`, `%-`, `%%`) or by PID. A job the
//! interpreter runs as a background list (`cmd &` in brush 0.5) runs as an
//! internal task; with the patch mosaic carries to brush-core
//! (`vendor/README.md`) the job knows the first process it spawned, which
//! gives `$!`, `[N] PID` and the job's process group. A list that spawned
//! nothing within 1 s has none: mosh then finds it ([`job_groups`]): the
//! shell's child that leads a process group no other job claims and runs
//! the job's command (as typed, else by the program's name; jobs do not
//! start in their order). `kill` is mosh's for that reason (brush's fails on
//! such a job), as bash's: `kill [-s SIG | -SIG | -n NUM] %JOB|PID...`,
//! `kill -l`; `wait` too (brush's knows no PIDs and always returns 0).

use std::io::Write;
use std::time::Duration;

use brush_core::builtins::Command;
use brush_core::{ExecutionContext, ExecutionExitCode, ExecutionResult, ShellExtensions};
use mosaic_client::{Client, ClientError, Moved};

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

/// Shell code an interactive mosh runs after [`PRELUDE`]: the completion
/// script `mosaic completions bash` prints (clap_complete's).
pub const COMPLETIONS: &str = r#"
if command -v "$MOSH_MOSAIC" >/dev/null 2>&1; then
    eval "$("$MOSH_MOSAIC" completions bash 2>/dev/null)"
fi
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
        ("kill", builtin::<Kill, SE>()),
        ("wait", builtin::<Wait, SE>()),
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

/// Runs a blocking exchange with the daemon off the interpreter's thread.
async fn ask<T: Send + 'static>(
    session: &'static Session,
    timeout: Duration,
    f: impl FnOnce(&mut Client) -> Result<T, ClientError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(move || session.with_client(timeout, f))
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
    let groups = job_groups(ctx.shell);
    let job = ctx
        .shell
        .jobs_mut()
        .resolve_job_spec(target)
        .ok_or_else(|| format!("{target}: no such job"))?;
    let pgrp = groups.iter().find(|g| g.0 == job.id).map(|g| g.1);
    if let Some(pgrp) = pgrp {
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

/// The process group of each job: its own if the interpreter knows it,
/// else found among the shell's children (see the module's note).
pub fn job_groups<SE: ShellExtensions>(shell: &brush_core::Shell<SE>) -> Vec<(usize, i32)> {
    let jobs = &shell.jobs().jobs;
    let mut groups: Vec<(usize, i32)> = jobs
        .iter()
        .filter_map(|j| Some((j.id, j.process_group_id()?)))
        .collect();
    let me = mosaic_proto::abi::my_pid();
    // Group leaders among the shell's children, oldest first.
    let mut leaders: Vec<(i32, String)> = crate::watch::descendants_of(me)
        .into_iter()
        .filter(|d| d.parent == me && d.pid == d.pgrp)
        .map(|d| (d.pid, d.cmd))
        .collect();
    leaders.sort();
    let mut unknown: Vec<_> = jobs
        .iter()
        .filter(|j| j.process_group_id().is_none())
        .collect();
    unknown.sort_by_key(|j| j.id);
    // The command as typed and as the process shows it, compared without
    // quotes and extra spaces; failing that, by the program's name.
    let plain = |s: &str| {
        s.replace(['\'', '"'], "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let word = |s: &str| {
        let plain = plain(s);
        let first = plain.split(' ').next().unwrap_or("");
        first.rsplit('/').next().unwrap_or(first).to_string()
    };
    let exact = |job: &str, cmd: &str| !job.is_empty() && plain(job) == plain(cmd);
    let named = |job: &str, cmd: &str| !word(job).is_empty() && word(job) == word(cmd);
    for same in [&exact as &dyn Fn(&str, &str) -> bool, &named] {
        for job in &unknown {
            if groups.iter().any(|g| g.0 == job.id) {
                continue;
            }
            let found = leaders.iter().position(|(pgrp, cmd)| {
                !groups.iter().any(|g| g.1 == *pgrp) && same(&job.command_line, cmd)
            });
            if let Some(i) = found {
                groups.push((job.id, leaders.remove(i).0));
            }
        }
    }
    groups
}

/// The session and the processes `target` names, or `None` after saying
/// why not.
fn session_and_targets<SE: ShellExtensions>(
    ctx: &mut ExecutionContext<'_, SE>,
    target: &str,
) -> Option<(&'static Session, Vec<i32>)> {
    let session = session_or_complain(ctx)?;
    match resolve(ctx, session, target) {
        Ok(pids) => Some((session, pids)),
        Err(e) => {
            let _ = writeln!(ctx.stderr(), "{}: {e}", ctx.command_name);
            None
        }
    }
}

/// Moves each process of `target` to `node` ("home" and "balance" too).
async fn move_target<SE: ShellExtensions>(
    mut ctx: ExecutionContext<'_, SE>,
    target: &str,
    node: &str,
) -> ExecutionResult {
    let Some((session, pids)) = session_and_targets(&mut ctx, target) else {
        return exit(1);
    };
    let mut failed = false;
    for pid in pids {
        let to = node.to_string();
        // A large process takes a while to move.
        match ask(session, Duration::from_secs(600), move |c| {
            c.migrate(pid, &to)
        })
        .await
        {
            Ok(Moved::To { pid, node, .. }) => {
                let _ = writeln!(ctx.stdout(), "process {pid} now runs on {node}");
            }
            Ok(Moved::Stays { pid, node }) => {
                let _ = writeln!(ctx.stdout(), "process {pid} stays on {node}");
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
        let mosaic = session::mosaic_command().to_string_lossy().into_owned();
        let cmd = brush_core::commands::compose_std_command(&ctx, &mosaic, "mosaic", &args, false)?;
        let status = tokio::process::Command::from(cmd).status().await;
        Ok(match status {
            Ok(s) => exit(u8::try_from(s.code().unwrap_or(1) & 0xff).unwrap_or(1)),
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
        let procs = match ask(session, Duration::from_secs(10), |c| c.ps()).await {
            Ok(procs) => procs,
            Err(e) => {
                let _ = writeln!(ctx.stderr(), "mps: {e}");
                return Ok(exit(1));
            }
        };
        // Jobs by process group, for the JOB column.
        let groups = job_groups(ctx.shell);
        let mut children: Vec<_> = session.children().into_iter().collect();
        children.sort_by_key(|(pid, _)| *pid);
        let mut out = ctx.stdout();
        let _ = writeln!(
            out,
            "{:<5} {:>7} {:<8} {:<10} {:>6}  COMMAND",
            "JOB", "PID", "WHERE", "STATE", "%CPU"
        );
        for (pid, child) in children {
            let job = groups
                .iter()
                .find(|(_, pgrp)| *pgrp == child.pgrp)
                .map_or("-".to_string(), |(id, _)| format!("[{id}]"));
            let row = procs
                .iter()
                .find(|p| p.home == session.node && p.home_pid == pid);
            let (node, state, cpu, cmd) = match row {
                Some(p) => (p.node.clone(), p.state.clone(), p.cpu, p.cmd.clone()),
                None => {
                    let st = mosaic_ckpt::procstat::stat(pid);
                    (
                        session.node.clone(),
                        st.as_ref()
                            .map_or("ended", |s| mosaic_ckpt::procstat::state_name(s.state))
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
    let Some((session, pids)) = session_and_targets(&mut ctx, target) else {
        return exit(1);
    };
    let mut failed = false;
    for pid in pids {
        session.set_user_lock(pid, lock);
        match ask(session, Duration::from_secs(10), move |c| {
            c.manage(pid, lock, Default::default())
        })
        .await
        {
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

/// Prints the queued job notes (`[1]+ moved to node2`) and tells the
/// session the jobs' names for the notes that come while a line is edited
/// ([`session::Session::note`]); run before each prompt through
/// PROMPT_COMMAND.
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
        let groups = job_groups(ctx.shell);
        let jobs = &ctx.shell.jobs().jobs;
        // Notes that come while a line is edited name their job as here.
        session.set_job_names(
            groups
                .iter()
                .filter_map(|g| jobs.iter().find(|j| j.id == g.0).map(|j| (g.1, j)))
                .map(|(pgrp, j)| (pgrp, format!("[{}]{}", j.id, j.annotation())))
                .collect(),
        );
        let notes = session.take_notes();
        let mut err = ctx.stderr();
        // Handed to the line editor after the last line was read: printed
        // here, not where the editor would put them as it starts.
        for line in session.take_unprinted() {
            let _ = writeln!(err, "{line}");
        }
        for note in notes {
            let job = groups
                .iter()
                .find(|g| g.1 == note.pgrp)
                .and_then(|g| jobs.iter().find(|j| j.id == g.0));
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
        let Ok(nodes) = ask(session, Duration::from_secs(2), |c| c.nodes()).await else {
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

/// Send a signal to jobs or processes (bash's `kill`; see the module's note).
#[derive(clap::Parser)]
#[command(name = "kill", disable_help_flag = true)]
pub struct Kill {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// A signal by name (`TERM`, `SIGTERM`, any case) or number; 0 checks.
fn signal_of(spec: &str) -> Option<i32> {
    if let Ok(n) = spec.parse::<i32>() {
        return (0..=64).contains(&n).then_some(n);
    }
    let upper = spec.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

/// Sends `signal` to process `target`, or to its process group.
fn send(target: i32, group: bool, signal: i32) -> Result<(), String> {
    let to = if group { -target } else { target };
    // SAFETY: kill takes two integers.
    if unsafe { libc::kill(to, signal) } == 0 {
        Ok(())
    } else {
        Err(format!("({target}) - {}", nix::errno::Errno::last().desc()))
    }
}

impl Kill {
    /// The signal and the targets.
    fn parse(&self) -> Result<(i32, &[String]), String> {
        let mut args = self.args.as_slice();
        let mut signal = libc::SIGTERM;
        match args.first().map(String::as_str) {
            Some("-s" | "-n") => {
                let spec = args.get(1).map_or("", String::as_str);
                signal = signal_of(spec)
                    .ok_or_else(|| format!("{spec}: invalid signal specification"))?;
                args = &args[2..];
            }
            Some("--") => args = &args[1..],
            Some(a) if a.len() > 1 && a.starts_with('-') => {
                signal = signal_of(&a[1..])
                    .ok_or_else(|| format!("{}: invalid signal specification", &a[1..]))?;
                args = &args[1..];
            }
            _ => {}
        }
        if args.first().is_some_and(|a| a == "--") {
            args = &args[1..];
        }
        if args.is_empty() {
            return Err(
                "usage: kill [-s sigspec | -n signum | -sigspec] pid | jobspec ... or kill -l"
                    .into(),
            );
        }
        Ok((signal, args))
    }
}

impl Command for Kill {
    type Error = brush_core::Error;

    async fn execute<SE: ShellExtensions>(
        &self,
        ctx: ExecutionContext<'_, SE>,
    ) -> Result<ExecutionResult, Self::Error> {
        if matches!(self.args.first().map(String::as_str), Some("-l" | "-L")) {
            let mut out = ctx.stdout();
            for s in nix::sys::signal::Signal::iterator() {
                let _ = writeln!(out, "{:>2}) {}", s as i32, s.as_str());
            }
            return Ok(exit(0));
        }
        let (signal, targets) = match self.parse() {
            Ok(p) => p,
            Err(e) => {
                let _ = writeln!(ctx.stderr(), "kill: {e}");
                return Ok(exit(if e.starts_with("usage") { 2 } else { 1 }));
            }
        };
        let mut failed = false;
        for target in targets {
            let result = if target.starts_with('%') {
                let groups = job_groups(ctx.shell);
                match ctx.shell.jobs_mut().resolve_job_spec(target) {
                    None => Err(format!("{target}: no such job")),
                    Some(job) => match groups.iter().find(|g| g.0 == job.id) {
                        None => Err(format!("{target}: no process of this job is known")),
                        Some(&(_, pgrp)) => {
                            let r = send(pgrp, true, signal);
                            // A stopped job must run to take the signal, as in bash.
                            let stopped = matches!(job.state, brush_core::jobs::JobState::Stopped);
                            let passive = [0, libc::SIGKILL, libc::SIGCONT, libc::SIGSTOP];
                            if r.is_ok() && stopped && !passive.contains(&signal) {
                                let _ = send(pgrp, true, libc::SIGCONT);
                            }
                            r
                        }
                    },
                }
            } else {
                match target.parse::<i32>() {
                    Ok(pid) if pid < 0 => send(-pid, true, signal),
                    Ok(pid) => send(pid, false, signal),
                    Err(_) => Err(format!("{target}: arguments must be process or job IDs")),
                }
            };
            if let Err(e) = result {
                failed = true;
                let _ = writeln!(ctx.stderr(), "kill: {e}");
            }
        }
        Ok(exit(u8::from(failed)))
    }
}

/// Wait for jobs or processes of this shell and return the last one's
/// status (bash's `wait [ID...]`). mosh's because brush's knows no PIDs
/// ("wait with process IDs" is not implemented) and always returns 0.
#[derive(clap::Parser)]
#[command(name = "wait", disable_help_flag = true)]
pub struct Wait {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ids: Vec<String>,
}

impl Command for Wait {
    type Error = brush_core::Error;

    async fn execute<SE: ShellExtensions>(
        &self,
        ctx: ExecutionContext<'_, SE>,
    ) -> Result<ExecutionResult, Self::Error> {
        if let Some(option) = self.ids.iter().find(|a| a.starts_with('-')) {
            let _ = writeln!(
                ctx.stderr(),
                "wait: {option}: options are not supported by mosh (usage: wait [%JOB|PID...])"
            );
            return Ok(exit(2));
        }
        if self.ids.is_empty() {
            ctx.shell.jobs_mut().wait_all().await?;
            return Ok(exit(0));
        }
        let mut last = exit(0);
        for id in &self.ids {
            let jobs = ctx.shell.jobs_mut();
            let job = if id.starts_with('%') {
                jobs.resolve_job_spec(id)
            } else {
                match id.parse::<i32>() {
                    Ok(pid) => jobs.jobs.iter_mut().find(|j| {
                        j.representative_pid() == Some(pid) || j.process_group_id() == Some(pid)
                    }),
                    Err(_) => {
                        let _ = writeln!(ctx.stderr(), "wait: `{id}': not a pid or valid job spec");
                        last = exit(2);
                        continue;
                    }
                }
            };
            last = match job {
                Some(job) => job.wait().await?,
                None if id.starts_with('%') => {
                    let _ = writeln!(ctx.stderr(), "wait: {id}: no such job");
                    exit(127)
                }
                None => {
                    let _ = writeln!(ctx.stderr(), "wait: pid {id} is not a child of this shell");
                    exit(127)
                }
            };
        }
        Ok(last)
    }
}
