//! The scheduler's slice of a serving thread.

/// `struct sched_attr` (include/uapi/linux/sched/types.h), first version.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// `SCHED_ATTR_SIZE_VER0`: the size the kernel is told.
const SIZE: u32 = 48;
const _: () = assert!(std::mem::size_of::<SchedAttr>() == SIZE as usize);

/// Gives the calling thread a short scheduler slice (0.1 ms, the least
/// the kernel takes; its default is 0.75 ms times 1 + log2 of the CPUs),
/// keeping its policy (normal) and nice. Since Linux 6.12 a waking task
/// with a shorter slice preempts the running one at once; else it waits
/// for that task's slice to run out. A thread that serves other threads'
/// forwarded calls wakes, does a little and sleeps again: with its
/// default slice, each of its wake-ups behind a thread copying megabytes
/// waited up to a slice, and a small call takes several such wake-ups.
/// Processes and threads it starts have the default slice again
/// (`SCHED_FLAG_RESET_ON_FORK`): a guest born of the remote's serving
/// thread must not carry it (the kernel passes it on otherwise: the test
/// below fails without the flag). Best effort: a kernel before 6.12
/// keeps its slice and nothing changes.
pub fn short_slice() -> std::io::Result<()> {
    // SAFETY: getpriority has no memory arguments; 0 is this thread.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let attr = SchedAttr {
        size: SIZE,
        policy: 0, // SCHED_OTHER
        flags: 1,  // SCHED_FLAG_RESET_ON_FORK
        nice,
        runtime: 100_000,
        ..SchedAttr::default()
    };
    // SAFETY: attr is a valid sched_attr of the size it says, read by the
    // kernel only during the call; pid 0 is the calling thread.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const attr, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's slice as `sched_getattr` says (0 on a kernel
    /// before 6.12, which has none to say).
    fn slice() -> std::io::Result<u64> {
        let mut attr = SchedAttr::default();
        // SAFETY: attr is writable and SIZE bytes long; pid 0 is the
        // calling thread.
        let r = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &raw mut attr, SIZE, 0) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(attr.runtime)
    }

    #[test]
    fn a_short_slice_is_the_threads_own_and_not_its_childrens() {
        std::thread::spawn(|| {
            let before = slice().unwrap();
            short_slice().unwrap();
            assert_eq!(slice().unwrap(), 100_000, "default was {before}");
            // A process this thread starts (a guest's stub, a helper) has
            // the default slice again, not the serving thread's.
            // SAFETY: the child only calls async-signal-safe functions
            // (sched_getattr by syscall, _exit).
            match unsafe { nix::unistd::fork() }.unwrap() {
                nix::unistd::ForkResult::Child => {
                    let code = i32::from(slice().map_or(true, |s| s == 100_000));
                    // SAFETY: _exit ends the child without running the
                    // parent's handlers.
                    unsafe { libc::_exit(code) }
                }
                nix::unistd::ForkResult::Parent { child } => {
                    let status = nix::sys::wait::waitpid(child, None).unwrap();
                    assert_eq!(
                        status,
                        nix::sys::wait::WaitStatus::Exited(child, 0),
                        "a forked child kept the short slice"
                    );
                }
            }
            // Other threads keep theirs.
            let other = std::thread::spawn(|| slice().unwrap()).join().unwrap();
            assert_eq!(other, before);
        })
        .join()
        .unwrap();
    }
}
