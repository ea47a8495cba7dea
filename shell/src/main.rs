//! `mosh`: the interactive shell of a mosaic cluster.
//!
//! `mosh` (interactive), `mosh -c 'commands' [NAME [ARGS...]]`, or
//! `mosh script.sh [ARGS...]`, as bash. With no mosaic node on the machine,
//! the interactive first run brings up a local 2-node cluster and enters it.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use brush_builtins::ShellBuilderExt;
use clap::Parser;
use mosaic_shell::{builtins, session, start, watch};

mod rusage;

/// A bash-compatible shell whose jobs spread over the mosaic cluster.
#[derive(Parser, Debug)]
#[command(name = "mosh", version, about)]
struct Cli {
    /// Run these commands, then exit (as `bash -c`); the arguments after
    /// them are $0, $1, ...
    #[arg(short = 'c', value_name = "COMMANDS")]
    command: Option<String>,
    /// Never start a local cluster, even when there is no node here.
    #[arg(long)]
    no_cluster: bool,
    /// A script and its arguments (or, with -c, $0 and the arguments).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Where `cargo build` left `mosh` with `mosaic` and `mosaicd` beside it,
/// when the PATH does not find that `mosaic` (they are not installed).
fn uninstalled_tools() -> Option<PathBuf> {
    let dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let ours = dir.join("mosaic").canonicalize().ok()?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("mosaic"))
        .find(|m| m.is_file())
        .and_then(|m| m.canonicalize().ok());
    (found.as_ref() != Some(&ours)).then_some(dir)
}

/// The first run's install step, for the shell and every job it starts:
/// `dir` (mosh's own) first on the PATH, so that `mosaic ps` works as the
/// README types it, and its man pages (`mosaic man`, written into
/// `dir/mosaic-man/man1` when missing or older than `mosaic`) on the
/// MANPATH. (Not `dir/man`: a directory on the PATH named like a command
/// is what brush then tries to run for `man`.)
/// Runs before any other thread exists.
fn install_for_this_shell(dir: &std::path::Path) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path));
    let pages = dir.join("mosaic-man").join("man1");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&pages.join("mosaic.1")) < modified(&dir.join("mosaic")) {
        let _ = std::process::Command::new(dir.join("mosaic"))
            .arg("man")
            .arg("--dir")
            .arg(&pages)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    // A trailing colon: then man's own places.
    let mut manpath = dir.join("mosaic-man").into_os_string();
    manpath.push(":");
    if let Some(old) = std::env::var_os("MANPATH") {
        manpath.push(old);
    }
    if let Ok(path) = std::env::join_paths(dirs) {
        set_env("PATH", &path);
    }
    set_env("MANPATH", &manpath);
}

fn set_env(name: &str, value: &std::ffi::OsStr) {
    // SAFETY: called from main before any other thread exists (setenv is
    // unsound only while another thread reads the environment).
    unsafe { std::env::set_var(name, value) };
}

fn main() {
    if let Some(dir) = uninstalled_tools() {
        install_for_this_shell(&dir);
    }
    let raw: Vec<OsString> = std::env::args_os().skip(1).collect();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MOSH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli, &raw) {
        Ok(code) => std::process::exit(i32::from(code)),
        Err(e) => {
            eprintln!("mosh: {e:#}");
            std::process::exit(2);
        }
    }
}

fn run(cli: Cli, raw: &[OsString]) -> anyhow::Result<u8> {
    let script = cli.command.is_none() && !cli.args.is_empty();
    let interactive = cli.command.is_none() && !script && std::io::stdin().is_terminal();
    let session = match start::node_socket() {
        Some(socket) => match session::Session::connect(socket) {
            Ok(s) => {
                // A placeholder of a job that runs on another node sits
                // stopped under a tracer whether its guest runs or not:
                // brush asks mosaic whether such a process is stopped.
                brush_core::jobs::set_traced_stop_probe(session::traced_stopped);
                Some(session::init(s))
            }
            Err(e) => {
                eprintln!(
                    "mosh: this node's mosaicd does not answer ({e}): jobs run here, unmanaged"
                );
                None
            }
        },
        None if interactive && !cli.no_cluster => {
            let mosaic = session::mosaic_command();
            start::enter_local_cluster(&mosaic, raw)?;
            unreachable!("enter_local_cluster returns only on error");
        }
        None => {
            if interactive {
                eprintln!("mosh: no mosaic node here: jobs run on this machine, unmanaged");
            }
            None
        }
    };
    if let Some(s) = session {
        watch::spawn(s, interactive.then_some(0));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the shell's runtime")?;
    runtime.block_on(shell(cli, interactive, session))
}

async fn shell(
    cli: Cli,
    interactive: bool,
    session: Option<&'static session::Session>,
) -> anyhow::Result<u8> {
    let script = cli.command.is_none() && !cli.args.is_empty();
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    let (name, args) = match (&cli.command, cli.args.split_first()) {
        (Some(_), Some((zero, rest))) => (zero.clone(), rest.to_vec()),
        (Some(_), None) => ("mosh".to_string(), Vec::new()),
        (None, Some((script, rest))) => (script.clone(), rest.to_vec()),
        (None, None) => ("mosh".to_string(), Vec::new()),
    };
    let working_dir = std::env::var_os(start::START_DIR)
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .or_else(|| std::env::current_dir().ok());
    let node = session.map_or_else(|| r"\h".to_string(), |s| s.node.clone());
    let var = |v: String| brush_core::ShellVariable::new(v);
    let mut builder = brush_core::Shell::builder()
        .interactive(interactive)
        .command_string_mode(cli.command.is_some())
        .read_commands_from_stdin(cli.command.is_none() && !script)
        .shell_name(name)
        .shell_args(args)
        .maybe_working_dir(working_dir)
        .profile(brush_core::ProfileLoadBehavior::Skip)
        .rc(if interactive {
            brush_core::RcLoadBehavior::LoadCustom(home.join(".moshrc"))
        } else {
            brush_core::RcLoadBehavior::Skip
        })
        .default_builtins(brush_builtins::BuiltinSet::BashMode)
        .var(
            "HISTFILE",
            var(home.join(".mosh_history").display().to_string()),
        )
        .var("PS1", var(format!(r"\u@{node}:\w\$ ")))
        .var("PROMPT_COMMAND", var("__mosh_notes".to_string()))
        .var(
            "MOSH_MOSAIC",
            var(session::mosaic_command().display().to_string()),
        );
    for (name, registration) in builtins::all() {
        builder = builder.builtin(name, registration);
    }
    let mut shell = builder.build().await.context("cannot create the shell")?;
    let params = shell.default_exec_params();
    shell
        .run_string(
            builtins::PRELUDE,
            &brush_core::SourceInfo::from("mosh prelude"),
            &params,
        )
        .await
        .context("mosh's prelude failed")?;
    if interactive {
        // Tab completes `mosaic`'s commands and options (its own script).
        shell
            .run_string(
                builtins::COMPLETIONS,
                &brush_core::SourceInfo::from("mosh completions"),
                &params,
            )
            .await
            .context("loading mosaic's completions failed")?;
    }
    if let Some(command) = cli.command {
        shell.run_dash_c_command(command).await?;
        return Ok(shell.last_exit_status());
    }
    if script {
        let path = cli.args[0].clone();
        shell
            .run_script(std::path::Path::new(&path), cli.args.iter().skip(1))
            .await?;
        return Ok(shell.last_exit_status());
    }
    let shell: brush_interactive::ShellRef<_> = std::sync::Arc::new(tokio::sync::Mutex::new(shell));
    let ui = brush_interactive::UIOptions::default();
    if interactive {
        let mut input = brush_interactive::ReedlineInputBackend::new(&ui, &shell)
            .map_err(|e| anyhow::anyhow!("cannot start the line editor: {e}"))?;
        // Job notes ("[1]+ moved to node2") print as they come, above the
        // line being edited, which stays as it was.
        if let Some(session) = session {
            let printer = reedline::ExternalPrinter::<String>::new(64);
            session.set_printer(printer.clone());
            input.set_external_printer(printer);
        }
        brush_interactive::InteractiveShell::new(&shell, &mut input, &(&ui).into())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .run_interactively()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    } else {
        let mut input = brush_interactive::MinimalInputBackend;
        brush_interactive::InteractiveShell::new(&shell, &mut input, &(&ui).into())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .run_interactively()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let code = shell.lock().await.last_exit_status();
    Ok(code)
}
