//! The cost of a forwarded system call beside its floors, in one run.
//!
//! `cargo build --release && cargo run --release -p mosaic-bench --bin forward-bench` (root)
//!
//! A program on a 2-node local cluster times 20 000 `getppid()` and 20 000
//! 4 KiB `pread()` calls, once at home (native) and once after being
//! migrated to node2 (every call forwarded home). Beside them the floors
//! measured here: a 64-byte loopback TCP round trip, one seccomp trap
//! answered at once (user notification, which the remote uses; the
//! `RET_TRACE` trap it used before is printed for comparison), and one
//! system call injected into a stopped tracee (each across CPUs and on one
//! CPU). Goal of the migration issue: a forwarded call within 1.5x the sum
//! of the floors. Then 20 000 `getppid()` made by 1, 2 and 4 threads at
//! once, at home and forwarded (the threads issue: forwarded calls of
//! different threads overlap, so the rate must grow with threads). Last,
//! one thread's small calls beside another's 8 MiB reads and writes
//! (`forward-bench beside`: those tables alone, three times, on nodes of
//! one CPU and on nodes sharing both).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use mosaic_bench::LocalCluster;
use std::time::Instant;

use anyhow::{Context, bail};
use nix::sys::ptrace;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

const ROUNDS: u32 = 5000;

fn pin(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    let _ = set.set(cpu);
    let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &set);
}

fn unpin() {
    let mut set = nix::sched::CpuSet::new();
    for c in 0..nix::sched::CpuSet::count().min(1024) {
        let _ = set.set(c);
    }
    let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &set);
}

/// µs per 64-byte round trip over loopback TCP; server on `server_cpu`.
fn tcp_rtt(client_cpu: usize, server_cpu: usize) -> anyhow::Result<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        pin(server_cpu);
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; 64];
        for _ in 0..ROUNDS {
            s.read_exact(&mut buf)?;
            s.write_all(&buf)?;
        }
        Ok(())
    });
    pin(client_cpu);
    let mut c = std::net::TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let mut buf = [0u8; 64];
    let t = Instant::now();
    for _ in 0..ROUNDS {
        c.write_all(&buf)?;
        c.read_exact(&mut buf)?;
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    server
        .join()
        .map_err(|_| anyhow::anyhow!("server panicked"))??;
    unpin();
    Ok(us)
}

/// A child stopped under our ptrace (it called PTRACE_TRACEME and stopped);
/// `then` runs in the child after it is resumed.
fn traced_child(then: impl FnOnce()) -> anyhow::Result<Pid> {
    // SAFETY: the child only makes system calls and exits; the bench is
    // single-threaded at this point.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => {
            // SAFETY: plain system calls in the child.
            unsafe {
                libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
                libc::raise(libc::SIGSTOP);
            }
            then();
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            waitpid(child, None)?;
            Ok(child)
        }
    }
}

/// µs per seccomp RET_TRACE trap of getppid with an immediate resume.
fn trap_cost(child_cpu: usize, tracer_cpu: usize) -> anyhow::Result<f64> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let filter = SeccompFilter::new(
        [(libc::SYS_getppid, vec![])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Trace(0),
        TargetArch::x86_64,
    )?;
    let prog: BpfProgram = filter.try_into()?;
    pin(child_cpu);
    let child = traced_child(move || {
        // SAFETY: installs a filter on ourselves; the program outlives the call.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            let fprog = libc::sock_fprog {
                len: u16::try_from(prog.len()).unwrap_or(u16::MAX),
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const _,
            );
            for _ in 0..ROUNDS {
                libc::getppid();
            }
        }
    })?;
    pin(tracer_cpu);
    ptrace::setoptions(
        child,
        ptrace::Options::PTRACE_O_TRACESECCOMP | ptrace::Options::PTRACE_O_EXITKILL,
    )?;
    let t = Instant::now();
    let mut traps = 0u32;
    loop {
        ptrace::cont(child, None)?;
        match waitpid(child, Some(WaitPidFlag::__WALL))? {
            WaitStatus::PtraceEvent(..) => traps += 1,
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => break,
            _ => {}
        }
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(traps.max(1));
    unpin();
    if traps < ROUNDS {
        bail!("only {traps} traps");
    }
    Ok(us)
}

/// µs per seccomp user notification of getppid answered at once (with
/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`, as the remote uses it).
fn notif_trap_cost(child_cpu: usize, supervisor_cpu: usize) -> anyhow::Result<f64> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let filter = SeccompFilter::new(
        [(libc::SYS_getppid, vec![])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Trace(0),
        TargetArch::x86_64,
    )?;
    let mut prog: BpfProgram = filter.try_into()?;
    for ins in &mut prog {
        if ins.code == 0x06 && ins.k == 0x7ff0_0000 {
            ins.k = 0x7fc0_0000; // SECCOMP_RET_USER_NOTIF
        }
    }
    pin(child_cpu);
    // SAFETY: the child only makes system calls and exits.
    let child = match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => {
            // SAFETY: installs a filter on ourselves; the program outlives the call.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let fprog = libc::sock_fprog {
                    len: u16::try_from(prog.len()).unwrap_or(u16::MAX),
                    filter: prog.as_ptr() as *mut libc::sock_filter,
                };
                // SECCOMP_FILTER_FLAG_NEW_LISTENER
                let fd = libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    8,
                    &fprog as *const _,
                );
                libc::dup2(i32::try_from(fd).unwrap_or(-1), 900);
                libc::raise(libc::SIGSTOP);
                for _ in 0..ROUNDS {
                    libc::getppid();
                }
                libc::_exit(0)
            }
        }
        ForkResult::Parent { child } => child,
    };
    waitpid(child, Some(WaitPidFlag::WUNTRACED))?;
    pin(supervisor_cpu);
    // SAFETY: pidfd_open/pidfd_getfd take integers and return descriptors we own.
    let listener = unsafe {
        let pidfd =
            i32::try_from(libc::syscall(libc::SYS_pidfd_open, child.as_raw(), 0)).unwrap_or(-1);
        let l = i32::try_from(libc::syscall(libc::SYS_pidfd_getfd, pidfd, 900, 0)).unwrap_or(-1);
        libc::close(pidfd);
        l
    };
    anyhow::ensure!(listener >= 0, "no listener");
    let sync = 1u64;
    // SAFETY: SECCOMP_IOCTL_NOTIF_SET_FLAGS reads one u64.
    unsafe { libc::ioctl(listener, 0x4008_2104, &sync as *const u64) };
    nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGCONT)?;
    let t = Instant::now();
    for _ in 0..ROUNDS {
        let mut notif = [0u64; 10];
        // SAFETY: NOTIF_RECV fills 80 bytes; NOTIF_SEND reads 24.
        unsafe {
            if libc::ioctl(listener, 0xc050_2100, notif.as_mut_ptr()) != 0 {
                bail!("NOTIF_RECV failed");
            }
            let resp = [notif[0], 0u64, 0u64];
            libc::ioctl(listener, 0xc018_2101, resp.as_ptr());
        }
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    waitpid(child, None)?;
    // SAFETY: our descriptor, closed once.
    unsafe { libc::close(listener) };
    unpin();
    Ok(us)
}

/// µs per getppid injected into a stopped tracee.
fn injection_cost(child_cpu: usize, tracer_cpu: usize) -> anyhow::Result<f64> {
    pin(child_cpu);
    let child = traced_child(|| {})?;
    pin(tracer_cpu);
    let mut t = mosaic_ckpt::ptrace::Tracee::from_stopped_child(child)?;
    // The child stopped right after the `syscall` of raise().
    let rip = t.regs()?.rip;
    t.set_syscall_insn(rip - 2);
    let start = Instant::now();
    for _ in 0..ROUNDS {
        t.syscall(libc::SYS_getppid, [0; 6])?;
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL)?;
    waitpid(child, None)?;
    unpin();
    Ok(us)
}

/// Runs `args` in node1, migrated to node2 or not, to its end: the value
/// of each line named in `names` (`name value`).
fn run_in_node1(
    c: &LocalCluster,
    args: &[&str],
    migrate: bool,
    names: &[&str],
) -> anyhow::Result<Vec<f64>> {
    let (mut run, mut out, pid) = c.start_in_node1(args)?;
    if migrate {
        // Locked: node2's balancer would send a guest that forwards this
        // many calls home (as it should), and the rest would run native.
        c.lock(&pid)?;
        c.migrate(&pid, "node2")?;
    }
    let mut rest = String::new();
    out.read_to_string(&mut rest)?;
    run.wait()?;
    names
        .iter()
        .map(|name| {
            rest.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("no {name} in {rest:?}"))
        })
        .collect()
}

/// `thread_calls` with `threads` threads: calls a second, all together.
fn thread_calls(
    c: &LocalCluster,
    prog: &Path,
    threads: usize,
    migrate: bool,
) -> anyhow::Result<f64> {
    let args = [prog.to_str().unwrap(), &threads.to_string()];
    Ok(run_in_node1(c, &args, migrate, &["calls_per_s"])?[0])
}

/// The syscall loop: (getppid ns, pread ns).
fn workload(
    c: &LocalCluster,
    prog: &Path,
    file: &Path,
    migrate: bool,
) -> anyhow::Result<(f64, f64)> {
    let args = [prog.to_str().unwrap(), file.to_str().unwrap()];
    let v = run_in_node1(c, &args, migrate, &["getppid", "pread4k"])?;
    Ok((v[0], v[1]))
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("mosaic-forward-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    if std::env::args().nth(1).as_deref() == Some("beside") {
        // Only the last table, three times (it varies from run to run).
        let inputs = beside_inputs(&dir)?;
        for (shape, args) in [
            ("nodes of one CPU each", &[][..]),
            ("both nodes on both CPUs", &["--cpus-per-node", "2"][..]),
        ] {
            let c = LocalCluster::up(&dir.join("cluster"), 2, 27946, args)?;
            for _ in 0..3 {
                for op in ["read", "write"] {
                    beside(&c, &inputs, shape, op)?;
                }
            }
        }
        std::fs::remove_dir_all(&dir)?;
        return Ok(());
    }
    let prog = mosaic_bench::build_c("syscall_loop", &dir)?;
    let file = dir.join("data");
    std::fs::write(&file, vec![7u8; 8192])?;

    println!("floors (µs)              across CPUs   one CPU");
    let rtt = (tcp_rtt(0, 1)?, tcp_rtt(0, 0)?);
    println!("loopback TCP 64 B RTT    {:>11.1} {:>9.1}", rtt.0, rtt.1);
    let ptrace_trap = (trap_cost(0, 1)?, trap_cost(0, 0)?);
    println!(
        "seccomp RET_TRACE trap   {:>11.1} {:>9.1}   (not used any more)",
        ptrace_trap.0, ptrace_trap.1
    );
    let trap = (notif_trap_cost(0, 1)?, notif_trap_cost(0, 0)?);
    println!(
        "seccomp user notif trap  {:>11.1} {:>9.1}   (what the remote uses)",
        trap.0, trap.1
    );
    let inj = (injection_cost(0, 1)?, injection_cost(0, 0)?);
    println!("injected syscall         {:>11.1} {:>9.1}", inj.0, inj.1);
    let floor = (rtt.0 + trap.0 + inj.0, rtt.1 + trap.1 + inj.1);
    println!(
        "sum (RTT + notif + inj.) {:>11.1} {:>9.1}",
        floor.0, floor.1
    );

    let c = LocalCluster::up(&dir.join("cluster"), 2, 27946, &[])?;
    let native = workload(&c, &prog, &file, false)?;
    let forwarded = workload(&c, &prog, &file, true)?;
    println!();
    println!(
        "per call                 native µs  forwarded µs  forwarded / floor sum (across CPUs)"
    );
    println!(
        "getppid                  {:>9.2} {:>13.1} {:>10.2}x",
        native.0 / 1e3,
        forwarded.0 / 1e3,
        forwarded.0 / 1e3 / floor.0
    );
    println!(
        "pread 4 KiB              {:>9.2} {:>13.1} {:>10.2}x",
        native.1 / 1e3,
        forwarded.1 / 1e3,
        forwarded.1 / 1e3 / floor.0
    );
    println!("goal: forwarded within 1.5x of the floor sum");

    // Each thread's calls are made in its own placeholder thread at home:
    // they must overlap, not queue behind each other.
    let calls = mosaic_bench::build_c("thread_calls", &dir)?;
    println!();
    println!("getppid from T threads at once (20 000 calls between them)");
    println!("threads   native calls/s   forwarded calls/s   forwarded vs 1 thread");
    let mut one = None;
    for threads in [1usize, 2, 4] {
        let native = thread_calls(&c, &calls, threads, false)?;
        let forwarded = thread_calls(&c, &calls, threads, true)?;
        let base = *one.get_or_insert(forwarded);
        println!(
            "{threads:>7} {native:>16.0} {forwarded:>19.0} {:>20.2}x",
            forwarded / base
        );
    }
    println!("goal: more threads, more forwarded calls a second (not serialized)");

    let inputs = beside_inputs(&dir)?;
    for op in ["read", "write"] {
        beside(&c, &inputs, "nodes of one CPU each", op)?;
    }
    drop(c);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The program and the 8 MiB file of [`beside`], made once in `dir`.
fn beside_inputs(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let prog = mosaic_bench::build_c("beside_reads", dir)?;
    let big = dir.join("big");
    std::fs::write(&big, vec![5u8; 8 << 20])?;
    Ok((prog, big))
}

/// One thread's large results (8 MiB reads; `op` "write": large
/// arguments) beside another's small calls (`inputs`, from
/// [`beside_inputs`]): how long the small ones wait, natively and
/// forwarded, on cluster `c` (`shape` names its CPUs).
fn beside(
    c: &LocalCluster,
    (prog, big): &(PathBuf, PathBuf),
    shape: &str,
    op: &str,
) -> anyhow::Result<()> {
    let args = [prog.to_str().unwrap(), big.to_str().unwrap(), op];
    let names = [
        "alone_p50",
        "alone_p99",
        "beside_p50",
        "beside_p99",
        "alone_held_p99",
        "beside_held_p99",
    ];
    println!();
    println!("getppid of one thread while another {op}s 8 MiB a call (µs), {shape}");
    println!(
        "               alone p50  alone p99  beside p50  beside p99  beside/alone p99   held p99 alone  beside"
    );
    for migrate in [false, true] {
        let v = run_in_node1(c, &args, migrate, &names)?;
        println!(
            "{:<14} {:>9.1} {:>10.1} {:>11.1} {:>11.1} {:>17.2}x {:>15.1} {:>7.1}",
            if migrate { "forwarded" } else { "native" },
            v[0],
            v[1],
            v[2],
            v[3],
            v[3] / v[1],
            v[4],
            v[5]
        );
    }
    println!(
        "held: from when the thread's 2 ms sleep was due to end to its call's end (a wake-up waits for a CPU too)"
    );
    println!(
        "goal: forwarded held p99 beside near native's on the same CPUs (a large result holds up another thread's call no more than natively)"
    );
    Ok(())
}
