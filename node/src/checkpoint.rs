//! `mosaic checkpoint` and `mosaic restore`: stand-alone checkpoint/restart
//! of one process (what MOSIX calls `mosrun -C`/`-R`), on top of `mosaic-ckpt`.

use std::io::{BufReader, BufWriter};
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use mosaic_ckpt::{CaptureOptions, RestoreOptions, StdioMode};
use nix::sys::signal::Signal;

/// What happens to the process after a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum After {
    /// It goes on running (the default).
    #[default]
    LeaveRunning,
    /// It is left stopped (SIGSTOP); `kill -CONT` resumes it.
    Stop,
    /// It is killed.
    Kill,
}

/// Images smaller than this get no progress bar.
const PROGRESS_FROM: u64 = 64 << 20;

fn progress_bar(verb: &str) -> impl FnMut(u64, u64) {
    let verb = verb.to_string();
    let mut bar: Option<ProgressBar> = None;
    move |done, total| {
        if total < PROGRESS_FROM {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .expect("valid template"),
            );
            b.set_message(verb.clone());
            b
        });
        b.set_position(done);
        if done >= total {
            b.finish_and_clear();
        }
    }
}

/// Checkpoints `pid` into `output`. With `--kill` or `--stop`, a process
/// whose image a `mosaic restore` could not bring back is refused before
/// anything is done to it: a command that succeeds never loses a process.
pub fn checkpoint(pid: i32, output: &Path, after: After, embed_files: bool) -> anyhow::Result<()> {
    if mosaic_ckpt::procstat::stat(pid).is_none_or(|s| s.state == 'Z') {
        anyhow::bail!("no process {pid} runs here (it has ended, or the PID is another node's)");
    }
    // Descriptors 0-2 can be given by `mosaic restore --stdio inherit`.
    let (stdio, blockers): (Vec<_>, Vec<_>) = mosaic_ckpt::capture::restore_blockers(pid)?
        .into_iter()
        .map(|(fd, what)| (fd, format!("fd {fd} is {what}")))
        .partition(|(fd, _)| *fd <= 2);
    let words = |v: Vec<(i32, String)>| v.into_iter().map(|b| b.1).collect::<Vec<_>>().join("; ");
    if after != After::LeaveRunning && !blockers.is_empty() {
        anyhow::bail!(
            "not checkpointed: `mosaic restore` could not bring process {pid} back ({}), so --{} would lose it; nothing was done to it. Use --leave-running to keep it running",
            words(blockers),
            if after == After::Kill { "kill" } else { "stop" }
        );
    }
    let tmp = output.with_extension("partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let opts = CaptureOptions {
        embed_files,
        threads: true,
        ..Default::default()
    };
    let captured = mosaic_ckpt::capture(
        pid,
        &opts,
        BufWriter::new(file),
        &mut progress_bar("checkpoint"),
    );
    let (tracee, stats) = match captured {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    };
    if let Err(e) = std::fs::rename(&tmp, output) {
        tracee.release()?;
        return Err(e).with_context(|| format!("cannot write {}", output.display()));
    }
    match after {
        After::LeaveRunning => tracee.release()?,
        After::Stop => {
            // Through the tracee, so signals that came during the capture
            // are not lost.
            tracee
                .release_with(Some(Signal::SIGSTOP))
                .context("cannot leave the process stopped")?;
        }
        After::Kill => {
            // Its death collected as its tracer, thread by thread; its
            // parent still gets its own.
            tracee
                .kill()
                .context("cannot kill the checkpointed process")?;
        }
    }
    if !stdio.is_empty() {
        eprintln!(
            "note: restore it with `mosaic restore {} --stdio inherit` ({})",
            output.display(),
            words(stdio)
        );
    }
    let threads = match stats.threads {
        1 => String::new(),
        n => format!("{n} threads, "),
    };
    eprintln!(
        "checkpointed process {pid} to {} ({threads}{} memory areas, {} pages, {:.1} MiB)",
        output.display(),
        stats.vmas,
        stats.pages,
        stats.image_bytes as f64 / f64::from(1 << 20)
    );
    Ok(())
}

/// Restores the image in `input` and waits for the process, returning its
/// exit code (128+N if signal N killed it).
pub fn restore(input: &Path, stdio: StdioMode) -> anyhow::Result<i32> {
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let signals = crate::supervise::forwarded_signals();
    crate::supervise::block(&signals)?;
    let pid = mosaic_ckpt::restore(
        BufReader::with_capacity(1 << 20, file),
        &RestoreOptions {
            stdio,
            ..Default::default()
        },
        &mut progress_bar("restore"),
    )
    .with_context(|| format!("cannot restore {}", input.display()))?;
    crate::supervise::supervise(pid, &signals, false)
}
