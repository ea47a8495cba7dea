//! Restore: bring an image back to life in a fresh stub process, or
//! (`restore_into`) in a process we already trace: a placeholder taking its
//! guest back.
//!
//! The stub is a fork of the caller sleeping in `pause()`, seized and
//! interrupted there. Its own `syscall` instruction (it stopped right after
//! one) maps a trampoline
//! page in a hole of the image; from there everything else of the stub is
//! unmapped, each area of the image is mapped at its address and filled,
//! the vDSO is placed where the image had it, the mm fields are set with
//! `PR_SET_MM_MAP`, signal state, tid address, robust list, rseq and files
//! are set, and last the registers. The trampoline itself is left in place
//! (one page in a hole the program never used).
//!
//! Until the stub is released it dies with us (`PTRACE_O_EXITKILL`), and any
//! failure kills and reaps it: a failed restore leaves no process behind.

use mosaic_proto::abi;
use std::io::Read;

use mosaic_proto::image::{Backing, CpuTime, FdKind, ImageMeta, ImageReader, PAGE_SIZE};
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::CkptError;
use crate::areas::{OpenFiles, close_mapped_files, locate, locate_shared, map_area};
use crate::procfs;
use crate::ptrace::Tracee;

/// What the restored process's fds 0-2 are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdioMode {
    /// Reopen what the image had (regular files and /dev/null only).
    #[default]
    FromImage,
    /// Keep the restorer's own stdin, stdout and stderr.
    Inherit,
}

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub stdio: StdioMode,
    /// Restore no descriptor at all (a guest: its files stay home).
    pub no_files: bool,
    /// Leave the process's own descriptors alone (a placeholder taking its
    /// guest back: its descriptors are the process's).
    pub keep_files: bool,
    /// The restorer's own last step, before the registers (see
    /// [`Confine`]).
    pub confine: Option<std::sync::Arc<dyn Confine>>,
    /// Where the mapped files of the image are found when they are not
    /// here (a guest: `/mfs/<home>`, its home node's files): a file there
    /// with the same size and modification time is mapped from there, and
    /// its pages arrive when first touched.
    pub file_fallback: Option<std::path::PathBuf>,
    /// What becomes of the image's RLIMIT_CPU.
    pub cpu_limit: CpuLimit,
    /// The PID namespace to restore the process in (a guest's own, whose
    /// first process holds it: see the remote), under the PID and TIDs it
    /// had: they are free there, and what glibc and the kernel keep of
    /// them in its memory stays true. `None`: in ours, under a new PID
    /// (the TIDs it had if it has threads).
    pub pid_namespace: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
}

/// What the restorer does to the restored process last, before its
/// registers are set and it may run: its own policy, which this crate does
/// not hold (a guest's node gives it a process group of its own, drops its
/// credentials and installs mosaic's seccomp filter). It gets the stopped
/// process, to inject calls into (and its other threads, in
/// `Tracee::threads`: credentials, for one, are each thread's own), and [`DATA_ROOM`] bytes of the
/// process's memory at `data` to pass their structs through. Everything of
/// the image has been restored by then, and the image's signals are
/// queued and blocked; a failure here fails the restore (no process is
/// left behind).
pub trait Confine: Send + Sync + std::fmt::Debug {
    fn confine(&self, t: &mut Tracee, data: u64) -> Result<(), CkptError>;
}

/// Bytes a [`Confine`] may use at its `data` (the trampoline's pages
/// after its first).
pub const DATA_ROOM: u64 = (TRAMPOLINE_PAGES - 1) * PAGE_SIZE;

/// What a restore does with the image's RLIMIT_CPU, which the kernel
/// compares with the CPU time it counted itself (from zero for a restored
/// process).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CpuLimit {
    /// Set as the image says (a stand-alone restore: the process reads
    /// its own limit, and counts again from its restore).
    #[default]
    AsImaged,
    /// Lowered by the whole seconds of CPU time the image had used, so
    /// that the process is stopped when its total reaches the limit (a
    /// guest, whose `getrlimit` home answers with the limit as set).
    CountImage,
    /// Left as the process has it (a placeholder taking its guest back:
    /// its limits are the process's, as every change of a limit is made at
    /// home, and the guest's lowered one must not come back).
    KeepOwn,
}

/// Pages of the trampoline area: one of code, the rest for data
/// (paths, structures, a seccomp program).
const TRAMPOLINE_PAGES: u64 = 16;

const ARCH_MAP_VDSO_64: u64 = 0x2003;
const RSEQ_FLAG_UNREGISTER: u64 = 1;
const MAP_FIXED_NOREPLACE: u64 = libc::MAP_FIXED_NOREPLACE as u64;
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
const CHUNK: u64 = 4 << 20;

/// Restores the image read from `input`; returns the PID of the running
/// process, a child of the caller. `progress(done, total)` follows the pages.
/// A multi-threaded image comes back with every thread, each under the
/// TID it had (and so the process under its PID): those must be free
/// here.
pub fn restore<R: Read + Send>(
    input: R,
    opts: &RestoreOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Pid, CkptError> {
    let (t, _) = restore_stopped(input, opts, progress)?;
    let pid = t.pid;
    t.release()?;
    Ok(pid)
}

/// Like [`restore`], but the process is left stopped under our ptrace
/// (with `PTRACE_O_TRACESECCOMP`, so a seccomp filter's `RET_TRACE` stops
/// it): the caller continues it and serves its traps. If the caller dies,
/// so does the process. Also returns all the CPU time the image says the
/// process used (this kernel counts the restored process from zero: see
/// [`crate::cputime`]). Every thread of a multi-threaded image is
/// traced from the calling OS thread (`Tracee::threads`).
pub fn restore_traced<R: Read + Send>(
    input: R,
    opts: &RestoreOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Tracee, CpuTime), CkptError> {
    restore_stopped(input, opts, progress)
}

fn restore_stopped<R: Read + Send>(
    input: R,
    opts: &RestoreOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Tracee, CpuTime), CkptError> {
    let (reader, mut meta) = ImageReader::new(input)?;
    preflight(&mut meta, opts)?;
    let n = meta.threads.len();
    // The stub is born on our CPU and we stay there while we build it; it
    // gets our former CPU set back before it runs. A multi-threaded
    // process's is born under its PID (its threads' TIDs follow).
    let pin = crate::ptrace::SameCpu::pin(None);
    let mut t = match &opts.pid_namespace {
        Some(ns) => in_namespace(ns, || spawn_stub(Some(meta.pid)))?,
        None => spawn_stub((n > 1).then_some(meta.pid))?,
    };
    let pid = t.pid;
    match build(&mut t, reader, &meta, opts, pin.previous(), true, progress) {
        Ok(()) => {
            // Each thread its image's CPUs where this machine has them (a
            // thread's own, else the process's), else ours: every thread
            // was born on the CPU we pinned to.
            let available = |cpus: &[usize]| {
                let mut set = nix::sched::CpuSet::new();
                let mut any = false;
                for &c in cpus {
                    if pin.previous().is_none_or(|p| p.is_set(c).unwrap_or(false))
                        && set.set(c).is_ok()
                    {
                        any = true;
                    }
                }
                any.then_some(set)
            };
            let process = available(&meta.cpus).or_else(|| pin.previous().cloned());
            let own = t.threads.iter().zip(&meta.threads[1..]);
            for (tid, set) in std::iter::once((pid, process))
                .chain(own.map(|(born, th)| (born.pid, available(&th.cpus).or(process))))
            {
                if let Some(set) = set {
                    let _ = nix::sched::sched_setaffinity(tid, &set);
                }
            }
            ptrace::setoptions(
                pid,
                ptrace::Options::PTRACE_O_EXITKILL | ptrace::Options::PTRACE_O_TRACESECCOMP,
            )
            .map_err(|e| CkptError::Ptrace("PTRACE_SETOPTIONS", e))?;
            Ok((t, meta.cpu_total()))
        }
        Err(e) => {
            // Its threads too, each reaped (a traced one is ours to reap).
            if let Err(ke) = t.kill() {
                tracing::error!(pid = pid.as_raw(), error = %ke, "could not kill a failed restore's stub");
            }
            Err(e)
        }
    }
}

/// Everything that can be checked before a process exists; mapped files
/// are located (see [`locate`]) and the image made to name where.
fn preflight(meta: &mut ImageMeta, opts: &RestoreOptions) -> Result<(), CkptError> {
    let mut located: std::collections::HashMap<String, String> = Default::default();
    for v in &mut meta.vmas {
        if let Backing::SharedFile { file, .. } = &mut v.backing {
            file.path = locate_shared(file, opts)?;
        }
        if let Backing::File { file, .. } = &mut v.backing {
            let at = match located.get(&file.path) {
                Some(at) => at.clone(),
                None => {
                    let at = locate(file, opts.file_fallback.as_deref())?;
                    located.insert(file.path.clone(), at.clone());
                    at
                }
            };
            file.path = at;
        }
    }
    for f in meta
        .fds
        .iter()
        .filter(|_| !opts.no_files && !opts.keep_files)
    {
        if opts.stdio == StdioMode::Inherit && f.fd <= 2 {
            continue;
        }
        if let FdKind::Other { what } = &f.kind {
            return Err(CkptError::UnsupportedFd {
                fd: f.fd,
                what: what.clone(),
                hint: if f.fd <= 2 {
                    "; restore with --stdio inherit to give it yours"
                } else {
                    ""
                },
            });
        }
    }
    if !meta.vmas.iter().any(|v| v.backing == Backing::Vdso) {
        return Err(CkptError::Restore("the image has no vDSO".into()));
    }
    Ok(())
}

/// Restores the image into `t`, a process already stopped under our ptrace
/// that has a `syscall` instruction to inject with: a placeholder taking its
/// guest back. Its memory, registers and signal state become the image's;
/// what the kernel keeps for it (PID, parent, descriptors unless the options
/// say otherwise, credentials, cwd) stays. On success it is left stopped,
/// for the caller to release. On failure it may have lost its memory and
/// must not run user code again; it is still stopped and ours. Returns
/// all the CPU time the image says the process used.
pub fn restore_into<R: Read + Send>(
    t: &mut Tracee,
    input: R,
    opts: &RestoreOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CpuTime, CkptError> {
    let (reader, mut meta) = ImageReader::new(input)?;
    preflight(&mut meta, opts)?;
    // Each thread of the image goes back into its own thread (`t.threads`:
    // the same TIDs); one it does not have cannot be made here.
    if let Some(th) = meta.threads[1..]
        .iter()
        .find(|th| !t.threads.iter().any(|o| o.pid.as_raw() == th.tid))
    {
        return Err(CkptError::Restore(format!(
            "the image's thread {} is not a thread of process {}",
            th.tid, t.pid
        )));
    }
    // Threads that ended meanwhile end here too, before anything is
    // restored: without a TID address or robust list (both point into
    // memory that is the image's now), by an injected exit.
    let mut ended = Vec::new();
    for mut o in std::mem::take(&mut t.threads) {
        if meta.threads.iter().any(|th| th.tid == o.pid.as_raw()) {
            t.threads.push(o);
            continue;
        }
        o.syscall_ok("set_tid_address", libc::SYS_set_tid_address, [0; 6])?;
        o.syscall_ok(
            "set_robust_list",
            libc::SYS_set_robust_list,
            [0, 24, 0, 0, 0, 0],
        )?;
        match o.syscall(libc::SYS_exit, [0; 6]) {
            Ok(_) | Err(CkptError::Gone(_)) => ended.push(o.pid.as_raw()),
            Err(e) => return Err(e),
        }
    }
    if !ended.is_empty() {
        tracing::debug!(
            pid = t.pid.as_raw(),
            ?ended,
            "threads that ended away ended at home"
        );
    }
    // In the image's order.
    t.threads
        .sort_by_key(|o| meta.threads.iter().position(|th| th.tid == o.pid.as_raw()));
    let cpu = procfs::stat_fields(t.pid.as_raw())?
        .get(39)
        .and_then(|c| c.parse().ok());
    let pin = crate::ptrace::SameCpu::pin(cpu);
    build(t, reader, &meta, opts, pin.previous(), false, progress)?;
    Ok(meta.cpu_total())
}

/// `struct clone_args` (linux/sched.h, `CLONE_ARGS_SIZE_VER2`), for
/// `clone3` made here or injected.
#[derive(Default, zerocopy::IntoBytes, zerocopy::Immutable)]
#[repr(C)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// Why the kernel would not give a process or thread the ID it had.
fn id_refused(what: &str, id: i32, errno: nix::errno::Errno) -> CkptError {
    CkptError::Restore(match errno {
        nix::errno::Errno::EEXIST => format!(
            "{what} {id} is in use here: a multi-threaded process is restored with the IDs it had (glibc and the kernel keep them in its memory), so restore it once that process has ended and been reaped"
        ),
        nix::errno::Errno::EPERM => format!(
            "giving {what} {id} its ID again needs CAP_CHECKPOINT_RESTORE (run the restore as root)"
        ),
        e => format!("creating {what} {id}: clone3 failed: {e}"),
    })
}

/// A child of ours that sleeps in `pause()`, the fork's own code: born by
/// `clone3` under PID `pid` if given, else by `fork`.
fn fork_stub(pid: Option<i32>) -> Result<Pid, CkptError> {
    let r = match pid {
        None => {
            // SAFETY: the child only calls pause() and _exit (see stub_child).
            match unsafe { nix::unistd::fork() }.map_err(|e| CkptError::Ptrace("fork", e))? {
                nix::unistd::ForkResult::Child => 0,
                nix::unistd::ForkResult::Parent { child } => child.as_raw(),
            }
        }
        Some(pid) => {
            let set_tid = [pid];
            let args = CloneArgs {
                exit_signal: abi::reg(libc::SIGCHLD),
                set_tid: set_tid.as_ptr() as u64,
                set_tid_size: 1,
                ..CloneArgs::default()
            };
            // SAFETY: clone3 without CLONE_VM is a fork (the child has a
            // copy of our memory and returns here on its own stack); it
            // reads `args` and the one pid_t `set_tid` points to, both
            // alive across the call. The child only calls pause() and
            // _exit (see stub_child).
            let r =
                unsafe { libc::syscall(libc::SYS_clone3, &raw const args, size_of::<CloneArgs>()) };
            if r < 0 {
                return Err(id_refused("PID", pid, nix::errno::Errno::last()));
            }
            i32::try_from(r).map_err(|_| CkptError::Restore(format!("clone3 returned {r}")))?
        }
    };
    if r == 0 {
        stub_child();
    }
    Ok(Pid::from_raw(r))
}

/// The stub's life until it is taken over: async-signal-safe calls only,
/// so forking a multi-threaded caller is fine.
fn stub_child() -> ! {
    // SAFETY: pause and _exit are async-signal-safe system calls.
    unsafe {
        for _ in 0..100 {
            libc::pause();
        }
        libc::_exit(127)
    }
}

/// Runs `spawn` with the children of this thread born in PID namespace
/// `ns` (`setns` changes only the calling thread's, and we go back to our
/// own after: a namespace of ours may always be entered again).
fn in_namespace<T>(
    ns: &std::os::fd::OwnedFd,
    spawn: impl FnOnce() -> Result<T, CkptError>,
) -> Result<T, CkptError> {
    use nix::sched::{CloneFlags, setns};
    let own = std::fs::File::open("/proc/thread-self/ns/pid")
        .map_err(|e| CkptError::Io("/proc/thread-self/ns/pid".into(), e))?;
    setns(ns, CloneFlags::CLONE_NEWPID)
        .map_err(|e| CkptError::Ptrace("setns of the guest's PID namespace", e))?;
    let spawned = spawn();
    if let Err(e) = setns(&own, CloneFlags::CLONE_NEWPID) {
        // Every later child of this thread would be born in there.
        tracing::error!(error = %e, "could not return to our own PID namespace");
    }
    spawned
}

/// Forks a child that sleeps in `pause()` (under PID `pid`, if given),
/// seizes it and stops it there (seized, not `PTRACE_TRACEME`: only a
/// seized tracee can be kept in a group-stop with `PTRACE_LISTEN`, which
/// job control of guests needs).
fn spawn_stub(pid: Option<i32>) -> Result<Tracee, CkptError> {
    let child = fork_stub(pid)?;
    let kill = |why: String| {
        let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        CkptError::Restore(why)
    };
    // Interrupted inside pause(), its rip is right after a `syscall`
    // instruction, which build() uses.
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(format!("/proc/{child}/syscall"))
        .is_ok_and(|s| s.starts_with(&format!("{} ", libc::SYS_pause)))
    {
        if start.elapsed() > std::time::Duration::from_secs(5) {
            return Err(kill("the restore stub did not start".into()));
        }
        std::thread::yield_now();
    }
    let t = Tracee::seize(child).map_err(|e| kill(e.to_string()))?;
    ptrace::setoptions(child, ptrace::Options::PTRACE_O_EXITKILL)
        .map_err(|e| kill(format!("PTRACE_SETOPTIONS: {e}")))?;
    Ok(t)
}

/// A free range of `len` bytes in both the image and the stub.
fn find_hole(meta: &ImageMeta, stub: &[procfs::MapLine], len: u64) -> Result<u64, CkptError> {
    let mut used: Vec<(u64, u64)> = meta.vmas.iter().map(|v| (v.start, v.end)).collect();
    used.extend(stub.iter().map(|m| (m.start, m.end)));
    used.sort();
    let mut candidate: u64 = 0x1000_0000;
    for (s, e) in used {
        if candidate + len <= s {
            break;
        }
        candidate = candidate.max(e);
    }
    if candidate + len > TASK_SIZE {
        return Err(CkptError::Restore(
            "no free address range for the trampoline".into(),
        ));
    }
    Ok(candidate)
}

fn build<R: Read + Send>(
    t: &mut Tracee,
    reader: ImageReader<R>,
    meta: &ImageMeta,
    opts: &RestoreOptions,
    unpinned: Option<&nix::sched::CpuSet>,
    fresh_stub: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), CkptError> {
    let pid = t.pid.as_raw();
    let main = meta
        .threads
        .first()
        .ok_or_else(|| CkptError::Restore("the image holds no thread".into()))?;
    if fresh_stub {
        // The stub stopped right after the `syscall` of pause().
        let here = t.regs()?.rip;
        let mut two = [0u8; 2];
        t.read_mem(here - 2, &mut two)?;
        if two != [0x0f, 0x05] {
            return Err(CkptError::Restore(
                "stub did not stop after a syscall instruction".into(),
            ));
        }
        t.set_syscall_insn(here - 2);
    }
    // Our own rseq area is about to disappear: unregister it first.
    if let Some((addr, len, sig)) = t.rseq()? {
        t.syscall_ok(
            "rseq unregister",
            libc::SYS_rseq,
            [
                addr,
                u64::from(len),
                RSEQ_FLAG_UNREGISTER,
                u64::from(sig),
                0,
                0,
            ],
        )?;
    }
    let tramp = find_hole(meta, &procfs::maps(pid)?, TRAMPOLINE_PAGES * PAGE_SIZE)?;
    let rwx = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
    t.mmap_anon(
        "mmap of the trampoline",
        tramp,
        TRAMPOLINE_PAGES * PAGE_SIZE,
        rwx,
        MAP_FIXED_NOREPLACE,
    )?;
    t.write_mem(tramp, &[0x0f, 0x05, 0xcc])?;
    t.set_syscall_insn(tramp);
    let data = tramp + PAGE_SIZE;
    t.syscall_ok(
        "munmap below the trampoline",
        libc::SYS_munmap,
        [0, tramp, 0, 0, 0, 0],
    )?;
    let above = tramp + TRAMPOLINE_PAGES * PAGE_SIZE;
    t.syscall_ok(
        "munmap above the trampoline",
        libc::SYS_munmap,
        [above, TASK_SIZE - above, 0, 0, 0, 0],
    )?;

    fill(t, reader, meta, data, unpinned, progress)?;
    place_vdso(t, meta)?;
    crate::mm::restore(t, meta, data)?;
    crate::signals::restore(t, meta, data)?;
    crate::thread::restore(t, main, data)?;
    crate::files::restore(t, meta, opts, data)?;
    crate::timers::restore_itimers(t, meta, data)?;
    crate::limits::restore(t, meta, data, opts.cpu_limit)?;
    // Last of what can fail (a placeholder whose restore failed must not
    // keep the image's signals queued: its guest goes on and has them)
    // but the restorer's confinement, which comes after (a seccomp filter
    // would trap the injected calls). All blocked until the image's own
    // mask is set at the end: a queued signal delivered at one of the
    // injections that follow would stop them (and a real-time one is a
    // stop nix's waitpid cannot even name: EINVAL).
    t.set_sigmask(!0)?;
    // The other threads, born now with every signal blocked (a thread
    // gets its creator's mask), each under its TID.
    if !fresh_stub {
        // A placeholder's threads are there (`restore_into`).
        let mut threads = std::mem::take(&mut t.threads);
        let restored = threads
            .iter_mut()
            .zip(&meta.threads[1..])
            .try_for_each(|(o, th)| {
                o.set_syscall_insn(tramp);
                crate::thread::restore(o, th, data)
            });
        t.threads = threads;
        restored?;
    } else if meta.threads.len() > 1 {
        ptrace::setoptions(
            t.pid,
            ptrace::Options::PTRACE_O_EXITKILL | ptrace::Options::PTRACE_O_TRACECLONE,
        )
        .map_err(|e| CkptError::Ptrace("PTRACE_SETOPTIONS", e))?;
        for th in &meta.threads[1..] {
            let mut born = spawn_thread(t, th.tid, data)?;
            born.set_syscall_insn(tramp);
            crate::thread::restore(&mut born, th, data)?;
            t.threads.push(born);
        }
        ptrace::setoptions(t.pid, ptrace::Options::PTRACE_O_EXITKILL)
            .map_err(|e| CkptError::Ptrace("PTRACE_SETOPTIONS", e))?;
    }
    // Once every thread is there: a timer may signal any of them.
    crate::timers::restore_posix(t, meta, data)?;
    crate::signals::queue_pending(t, meta, data)?;
    if let Some(c) = &opts.confine {
        c.confine(t, data)?;
    }
    for (born, th) in t.threads.iter().zip(&meta.threads[1..]) {
        crate::thread::resume(born, th)?;
    }
    crate::thread::resume(t, main)
}

/// Creates a thread of the stopped process `t` under TID `tid` by an
/// injected `clone3` (`t` traces clones), and takes it stopped before it
/// runs a single instruction of its own (its registers are set after).
fn spawn_thread(t: &mut Tracee, tid: i32, data: u64) -> Result<Tracee, CkptError> {
    let flags = libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM;
    let set_tid = data + 256;
    let args = CloneArgs {
        flags: abi::reg(flags),
        set_tid,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    t.write_mem(data, zerocopy::IntoBytes::as_bytes(&args))?;
    t.write_mem(set_tid, &tid.to_ne_bytes())?;
    let r = t.syscall(
        libc::SYS_clone3,
        [data, size_of::<CloneArgs>() as u64, 0, 0, 0, 0],
    )?;
    if (-4095..0).contains(&r) {
        return Err(id_refused(
            "thread ID",
            tid,
            nix::errno::Errno::from_raw(abi::int_result(-r)),
        ));
    }
    if r != i64::from(tid) {
        return Err(CkptError::Restore(format!(
            "a thread wanted as {tid} was born as {r}"
        )));
    }
    // Its TID as we see it (another if the process has a PID namespace
    // of its own).
    let ours = t.take_cloned().unwrap_or(Pid::from_raw(tid));
    Tracee::born(ours)
}

/// Maps every area and fills it. Another thread reads (and checksums) the
/// image while this one writes into the stub, so the two overlap.
fn fill<R: Read + Send>(
    t: &mut Tracee,
    mut reader: ImageReader<R>,
    meta: &ImageMeta,
    data: u64,
    unpinned: Option<&nix::sched::CpuSet>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), CkptError> {
    let total = meta.page_count() * PAGE_SIZE;
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    for _ in 0..3 {
        let _ = empty_tx.send(Vec::with_capacity(abi::usize_of(CHUNK)));
    }
    let unpinned = unpinned.cloned();
    std::thread::scope(|scope| {
        let read = scope.spawn(move || -> Result<(), CkptError> {
            if let Some(set) = unpinned {
                let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &set);
            }
            let mut left = total;
            while left > 0 {
                let Ok(mut buf) = empty_rx.recv() else {
                    return Ok(()); // the writer gave up; its error explains why
                };
                let len = left.min(CHUNK);
                buf.resize(len as usize, 0);
                reader.read_pages(&mut buf)?;
                left -= len;
                if full_tx.send(buf).is_err() {
                    return Ok(());
                }
            }
            // The checksum covers everything: a corrupt image fails here,
            // before the stub may run.
            reader.finish()?;
            Ok(())
        });
        let written = (|| -> Result<(), CkptError> {
            let ended = || CkptError::Restore("the image ended early".into());
            let mut done = 0;
            let mut cur: Vec<u8> = Vec::new();
            let mut pos = 0;
            let mut open_files = OpenFiles::new();
            for v in &meta.vmas {
                map_area(t, v, data, &mut open_files)?;
                for &(addr, n) in &v.pages {
                    let mut off = 0;
                    while off < n * PAGE_SIZE {
                        if pos == cur.len() {
                            let next = full_rx.recv().map_err(|_| ended())?;
                            let _ = empty_tx.send(std::mem::replace(&mut cur, next));
                            pos = 0;
                        }
                        let take = (n * PAGE_SIZE - off).min((cur.len() - pos) as u64);
                        t.write_mem(addr + off, &cur[pos..pos + abi::usize_of(take)])?;
                        pos += abi::usize_of(take);
                        off += take;
                        done += take;
                        progress(done, total);
                    }
                }
            }
            close_mapped_files(t, &mut open_files)
        })();
        drop(full_rx);
        drop(empty_tx);
        read.join()
            .map_err(|_| CkptError::Restore("image reader panicked".into()))??;
        written
    })
}

/// Writes a NUL-terminated path into the data page.
pub(crate) fn put_path(t: &Tracee, data: u64, path: &str) -> Result<(), CkptError> {
    if path.len() >= abi::usize_of(PAGE_SIZE) {
        return Err(CkptError::Restore(format!("path too long: {path}")));
    }
    let mut bytes = path.as_bytes().to_vec();
    bytes.push(0);
    t.write_mem(data, &bytes)
}

fn place_vdso(t: &mut Tracee, meta: &ImageMeta) -> Result<(), CkptError> {
    let first = meta
        .vmas
        .iter()
        .filter(|v| {
            matches!(
                v.backing,
                Backing::Vdso | Backing::Vvar | Backing::VvarVclock
            )
        })
        .map(|v| v.start)
        .min()
        .expect("preflight checked the vDSO");
    t.syscall_ok(
        "arch_prctl(ARCH_MAP_VDSO_64)",
        libc::SYS_arch_prctl,
        [ARCH_MAP_VDSO_64, first, 0, 0, 0, 0],
    )?;
    let want = meta
        .vmas
        .iter()
        .find(|v| v.backing == Backing::Vdso)
        .map(|v| v.start);
    let got = procfs::maps(t.pid.as_raw())?
        .into_iter()
        .find(|m| m.name == "[vdso]")
        .map(|m| m.start);
    if want != got {
        return Err(CkptError::Restore(format!(
            "the vDSO landed at {got:x?}, the image had it at {want:x?} (different kernel layout?)"
        )));
    }
    Ok(())
}
