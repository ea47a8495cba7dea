//! Capture: stop a process and write its image.
//!
//! The process is seized and interrupted wherever it is. State the kernel
//! shows through ptrace or `/proc` is read from outside; what only the process
//! itself can ask for (signal dispositions, the alternate stack, the tid
//! address, the current brk) is asked by system calls injected through a
//! `syscall` instruction of its vDSO, with a scratch page mapped for the
//! answers and unmapped afterwards. Memory areas come from `/proc/PID/maps`;
//! only pages that exist are written (`/proc/PID/pagemap`), and pages of a
//! private file mapping that are still the file's are sent by reference
//! unless `embed_files` is set.
//!
//! With [`CaptureOptions::threads`], every thread is stopped (listed and
//! seized until no new one appears) and each is asked for its own state
//! through injections into it.
//!
//! On any failure the process is released exactly as it was.

use mosaic_proto::abi;
use std::io::Write;

use mosaic_proto::image::{ImageMeta, ImageWriter, PAGE_SIZE, PendingSignal};
use nix::unistd::Pid;

use crate::procfs::{self, MapLine, Pagemap};
use crate::ptrace::Tracee;
use crate::{CkptError, cantmove};

/// How to capture.
#[derive(Debug, Clone, Default)]
pub struct CaptureOptions {
    /// Carry clean pages of private file mappings in the image instead of
    /// referring to the files.
    pub embed_files: bool,
    /// Files mapped from under this directory (a guest's `/mfs/<home>`)
    /// are recorded by their path at home (the rest of the path) and
    /// identified by size and time only (their inode is this node's view).
    pub files_from: Option<std::path::PathBuf>,
    /// CPU time the process used under other kernels, which this one did
    /// not count (see [`crate::cputime`]).
    pub cpu_elsewhere: mosaic_proto::image::CpuTime,
    /// Capture every thread of a multi-threaded process (a stand-alone
    /// checkpoint). Without it such a process is refused: a migration's
    /// sessions carry one thread.
    pub threads: bool,
}

/// What a capture measured.
#[derive(Debug, Clone, Default)]
pub struct CaptureStats {
    pub pages: u64,
    pub image_bytes: u64,
    pub vmas: usize,
    pub threads: usize,
    /// All the CPU time the image says the process used.
    pub cpu: mosaic_proto::image::CpuTime,
}

/// Largest read from the process at once.
const CHUNK: u64 = 4 << 20;

/// Captures process `pid` into `out`. On success the process is left
/// stopped under our ptrace: the caller decides whether it goes on
/// ([`Tracee::release`]), stops, or dies. `progress(done, total)` is called
/// as page bytes are written.
pub fn capture<W: Write + Send>(
    pid: i32,
    opts: &CaptureOptions,
    out: W,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Tracee, CaptureStats), CkptError> {
    let reasons = refusals(pid, opts)?;
    if !reasons.is_empty() {
        return Err(CkptError::CantMove { pid, reasons });
    }
    // Stop it, then question it from the CPU it last ran on (field 39 of
    // stat; injections are about 4x cheaper there); copy its pages from
    // anywhere. Not before the stop: a busy process holds that CPU, and
    // moving there would first wait out its time slice (4 ms measured).
    let mut tracee = Tracee::seize(Pid::from_raw(pid))?;
    if opts.threads
        && let Err(e) = seize_threads(&mut tracee, &mut |_| {})
    {
        if let Err(re) = tracee.release() {
            tracing::error!(pid, error = %re, "could not release process after a failed capture");
        }
        return Err(e);
    }
    let cpu = procfs::stat_fields(pid)?
        .get(39)
        .and_then(|c| c.parse().ok());
    let pin = crate::ptrace::SameCpu::pin(cpu);
    let described = describe(&mut tracee, opts);
    drop(pin);
    match described.and_then(|meta| write_image(&tracee, &meta, out, progress)) {
        Ok(stats) => Ok((tracee, stats)),
        Err(e) => {
            // Leave the process exactly as it was.
            if let Err(re) = tracee.release() {
                tracing::error!(pid, error = %re, "could not release process after a failed capture");
            }
            Err(e)
        }
    }
}

/// Why `pid` cannot be captured with `opts` (threads refused unless
/// [`CaptureOptions::threads`]).
fn refusals(pid: i32, opts: &CaptureOptions) -> Result<Vec<String>, CkptError> {
    if opts.threads {
        cantmove::capture_reasons(pid)
    } else {
        cantmove::reasons(pid)
    }
}

/// How many times the threads are listed and the new ones stopped before
/// a process that keeps creating threads is given up (CRIU's number).
const SEIZE_ROUNDS: usize = 5;

/// Stops every other thread of the process `t` leads, into `t.threads`:
/// the threads are listed and each new one seized and interrupted until a
/// listing shows no new one (a thread that was running may have created
/// one meanwhile; once every listed thread is stopped, none can). A thread
/// that ends before it is stopped is left out. `queued(tid)` is called
/// once each thread's interrupt is queued, before its stop is waited for
/// ([`Tracee::seize_with`]).
pub fn seize_threads(t: &mut Tracee, queued: &mut dyn FnMut(Pid)) -> Result<(), CkptError> {
    let pid = t.pid.as_raw();
    for _ in 0..SEIZE_ROUNDS {
        let new: Vec<i32> = procfs::tids(pid)?
            .into_iter()
            .filter(|&tid| tid != pid && !t.threads.iter().any(|h| h.pid.as_raw() == tid))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        for tid in new {
            let tid = Pid::from_raw(tid);
            match Tracee::seize_with(tid, || queued(tid)) {
                Ok(th) => t.threads.push(th),
                Err(CkptError::Gone(_))
                | Err(CkptError::Attach {
                    errno: nix::errno::Errno::ESRCH,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Err(CkptError::CantMove {
        pid,
        reasons: vec![format!(
            "it kept creating threads while being stopped ({SEIZE_ROUNDS} rounds)"
        )],
    })
}

/// Captures a process that is already stopped under our ptrace (a guest
/// being sent on or home; it must be in a signal-delivery or interrupt stop,
/// not inside a seccomp or syscall stop). On failure the process stays as
/// it was, stopped, and still ours.
pub fn capture_traced<W: Write + Send>(
    tracee: &mut Tracee,
    opts: &CaptureOptions,
    out: W,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CaptureStats, CkptError> {
    let meta = describe(tracee, opts)?;
    write_image(tracee, &meta, out, progress)
}

/// Everything but the page contents, read from the stopped process.
fn describe(t: &mut Tracee, opts: &CaptureOptions) -> Result<ImageMeta, CkptError> {
    let pid = t.pid.as_raw();
    // A thread may have been born between the check and the stop. (We
    // trace it now; a guest captured by its host carries mosaic's filter,
    // which is not part of the image.)
    let reasons = refusals(pid, opts)?
        .into_iter()
        .filter(|r| !r.starts_with("it is traced by") && r != cantmove::SECCOMP)
        .collect::<Vec<_>>();
    if !reasons.is_empty() {
        return Err(CkptError::CantMove { pid, reasons });
    }
    let mut others = std::mem::take(&mut t.threads);
    let described = describe_with(t, &mut others, opts);
    t.threads = others;
    described
}

/// [`describe`] with the other threads (if any) held apart from `t`.
fn describe_with(
    t: &mut Tracee,
    others: &mut [Tracee],
    opts: &CaptureOptions,
) -> Result<ImageMeta, CkptError> {
    let pid = t.pid.as_raw();
    let mut main = crate::thread::capture(t)?;
    let mut mm = crate::mm::capture(pid)?;
    main.name = thread_name(pid, pid);
    // Signals queued to the process, not to its main thread alone, are
    // queued so again (a signal queued both ways counts as the thread's).
    let shared = procfs::signal_set(pid, &["ShdPnd"])? & !procfs::signal_set(pid, &["SigPnd"])?;
    let cpus = affinity(pid);

    let maps_before = procfs::maps(pid)?;
    let insn = find_syscall_insn(t, &maps_before, main.regs.rip)?;
    t.set_syscall_insn(insn);
    // What only the process itself can tell, asked by injected calls that
    // write into a scratch page.
    let mut threads = Vec::new();
    let before = t.deferred_signals.len();
    let (sigactions, itimers, posix_timers) = with_scratch(t, |t, scratch| {
        crate::thread::ask(t, &mut main, scratch)?;
        mm.brk = t.syscall_ok("brk(0)", libc::SYS_brk, [0; 6])?;
        let sigactions = crate::signals::capture_actions(t, pid, scratch)?;
        // Its queued signals are taken off its queues (also those that
        // arrived at a stop before the interrupt or during an injection):
        // they travel as queued ones, with their siginfo, exactly once. The
        // tracee keeps them: if the process stays, release queues them
        // again; the caller drops them once the image runs elsewhere
        // (peeking instead left them queued at home too, and the deputy
        // relayed them a second time).
        crate::signals::take_queued(t, pid, scratch + 2048)?;
        // Then each other thread's own (the process's are taken: what is
        // left on its queue is its own).
        for o in others.iter_mut() {
            o.set_syscall_insn(insn);
            let tid = o.pid.as_raw();
            let mut th = crate::thread::capture(o)?;
            crate::thread::ask(o, &mut th, scratch)?;
            o.dequeue_signals(procfs::signal_set(tid, &["SigPnd"])?, scratch + 2048)?;
            th.pending = o.deferred_signals.iter().map(|d| d.info.to_vec()).collect();
            th.name = thread_name(pid, tid);
            th.cpus = Some(affinity(tid))
                .filter(|c| *c != cpus)
                .unwrap_or_default();
            threads.push(th);
        }
        let itimers = crate::timers::capture_itimers(t, scratch)?;
        let posix_timers = crate::timers::capture_posix(t, scratch)?;
        Ok((sigactions, itimers, posix_timers))
    })?;
    let mut pending: Vec<PendingSignal> = t
        .deferred_signals
        .iter()
        .enumerate()
        .map(|(i, d)| PendingSignal {
            // Taken off a queue (not at a stop before the interrupt, which
            // delivered it to this thread).
            shared: i >= before && shared & (1 << (d.signal - 1)) != 0,
            siginfo: d.info.to_vec(),
        })
        .collect();
    // A job stopped by Ctrl-Z stays stopped: its stop signal, queued
    // again, stops it wherever it is restored, before it runs anything (its
    // disposition is the default one, or it would not have stopped).
    if let Some(sig) = t.group_stop {
        pending.push(PendingSignal {
            shared: true,
            siginfo: crate::ptrace::Deferred::plain(sig as i32).info.to_vec(),
        });
    }

    let maps = procfs::maps(pid)?;
    let pagemap = Pagemap::open(pid)?;
    let mut vmas = Vec::new();
    for m in &maps {
        if let Some(v) = crate::areas::capture(pid, m, &pagemap, opts)? {
            vmas.push(v);
        }
    }
    let meta = ImageMeta {
        // As the process knows itself (a guest: its home PID), which is
        // its main thread's TID.
        pid: main.tid,
        exe: std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        cmdline: std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        threads: std::iter::once(main).chain(threads).collect(),
        sigactions,
        pending,
        vmas,
        fds: crate::files::capture(t)?,
        mm,
        itimers,
        posix_timers,
        rlimits: crate::limits::capture(pid)?,
        cpus,
        // Last: the capture's injections ran in it too.
        cpu_counted: crate::cputime::counted(pid)?,
        cpu_elsewhere: opts.cpu_elsewhere,
    };

    Ok(meta)
}

/// A thread's name (`comm`), "" if unreadable.
fn thread_name(pid: i32, tid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
        .map(|s| s.trim_end_matches('\n').to_string())
        .unwrap_or_default()
}

/// The CPUs a thread may run on (empty if unreadable).
fn affinity(tid: i32) -> Vec<usize> {
    nix::sched::sched_getaffinity(Pid::from_raw(tid))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .collect()
        })
        .unwrap_or_default()
}

/// Writes the image: pages are read from the process on this thread while
/// another thread checksums and writes them, so reading and writing overlap.
fn write_image<W: Write + Send>(
    t: &Tracee,
    meta: &ImageMeta,
    out: W,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CaptureStats, CkptError> {
    let total = meta.page_count() * PAGE_SIZE;
    let mut w = ImageWriter::new(
        CountingWriter {
            inner: out,
            count: 0,
        },
        meta,
    )?;
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    for _ in 0..3 {
        let _ = empty_tx.send(Vec::with_capacity(abi::usize_of(CHUNK)));
    }
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<u64, CkptError> {
            for buf in full_rx {
                w.write_pages(&buf)?;
                let _ = empty_tx.send(buf);
            }
            Ok(w.finish()?.count)
        });
        let read = (|| -> Result<(), CkptError> {
            let mut done = 0;
            // Consecutive runs are gathered into one buffer of up to CHUNK.
            let mut buf = empty_rx
                .recv()
                .map_err(|_| CkptError::Restore("image writer stopped".into()))?;
            for v in &meta.vmas {
                for &(addr, n) in &v.pages {
                    let mut off = 0;
                    while off < n * PAGE_SIZE {
                        let room = CHUNK - buf.len() as u64;
                        let len = (n * PAGE_SIZE - off).min(room);
                        let at = buf.len();
                        buf.resize(at + abi::usize_of(len), 0);
                        t.read_mem(addr + off, &mut buf[at..])?;
                        off += len;
                        done += len;
                        if buf.len() as u64 == CHUNK {
                            full_tx
                                .send(buf)
                                .map_err(|_| CkptError::Restore("image writer stopped".into()))?;
                            buf = empty_rx
                                .recv()
                                .map_err(|_| CkptError::Restore("image writer stopped".into()))?;
                            buf.clear();
                            progress(done, total);
                        }
                    }
                }
            }
            if !buf.is_empty() {
                full_tx
                    .send(buf)
                    .map_err(|_| CkptError::Restore("image writer stopped".into()))?;
            }
            progress(done, total);
            Ok(())
        })();
        drop(full_tx);
        let written = writer
            .join()
            .map_err(|_| CkptError::Restore("image writer panicked".into()))?;
        // The writer's own error (a full disk) explains the reader's.
        let image_bytes = written?;
        read?;
        Ok(CaptureStats {
            pages: meta.page_count(),
            image_bytes,
            vmas: meta.vmas.len(),
            threads: meta.threads.len(),
            cpu: meta.cpu_total(),
        })
    })
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A `syscall` instruction (0f 05) in the vDSO, or the one the process is
/// stopped after.
fn find_syscall_insn(t: &Tracee, maps: &[MapLine], rip: u64) -> Result<u64, CkptError> {
    if let Some(vdso) = maps.iter().find(|m| m.name == "[vdso]") {
        let mut text = vec![0u8; abi::usize_of(vdso.end - vdso.start)];
        t.read_mem(vdso.start, &mut text)?;
        if let Some(i) = text.windows(2).position(|w| w == [0x0f, 0x05]) {
            return Ok(vdso.start + i as u64);
        }
    }
    let mut two = [0u8; 2];
    if rip >= 2 && t.read_mem(rip - 2, &mut two).is_ok() && two == [0x0f, 0x05] {
        return Ok(rip - 2);
    }
    Err(CkptError::NoSyscallInsn)
}

/// Runs `ask` with a scratch page mapped in the process for injected
/// calls to write their answers into, and unmaps it after, whatever `ask`
/// returned.
fn with_scratch<T>(
    t: &mut Tracee,
    ask: impl FnOnce(&mut Tracee, u64) -> Result<T, CkptError>,
) -> Result<T, CkptError> {
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let scratch = t.mmap_anon("mmap of a scratch page", 0, PAGE_SIZE, rw, 0)?;
    let result = ask(t, scratch);
    let unmapped = t.syscall_ok(
        "munmap of the scratch page",
        libc::SYS_munmap,
        [scratch, PAGE_SIZE, 0, 0, 0, 0],
    );
    let r = result?;
    unmapped?;
    Ok(r)
}

pub use crate::areas::SHARED_FLAG;
pub use crate::files::restore_blockers;
