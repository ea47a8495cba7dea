//! The mm fields of a process, capture and restore side by side: where
//! its code, data, heap, stack, arguments and environment are, its
//! auxiliary vector and its executable (`/proc/PID/exe`), as
//! `PR_SET_MM_MAP` sets them all at once.

use mosaic_proto::abi;
use mosaic_proto::image::{ImageMeta, MmFields};
use zerocopy::{Immutable, IntoBytes, KnownLayout};

use crate::CkptError;
use crate::procfs;
use crate::ptrace::Tracee;

const PR_SET_MM: u64 = libc::PR_SET_MM as u64;
const PR_SET_MM_MAP: u64 = libc::PR_SET_MM_MAP as u64;

/// `struct prctl_mm_map` (linux/prctl.h; the libc crate does not have it).
#[derive(IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct PrctlMmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// Its fields from `/proc/PID/stat` and its auxiliary vector (`brk` is
/// asked of the process itself, by the capture).
pub(crate) fn capture(pid: i32) -> Result<MmFields, CkptError> {
    let f = procfs::stat_fields(pid)?;
    let num = |i: usize| -> Result<u64, CkptError> {
        f.get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| CkptError::Parse(format!("/proc/{pid}/stat field {i}")))
    };
    Ok(MmFields {
        start_code: num(26)?,
        end_code: num(27)?,
        start_stack: num(28)?,
        start_data: num(45)?,
        end_data: num(46)?,
        start_brk: num(47)?,
        brk: 0,
        arg_start: num(48)?,
        arg_end: num(49)?,
        env_start: num(50)?,
        env_end: num(51)?,
        auxv: procfs::auxv(pid)?,
    })
}

/// Gives the restored process the image's mm fields (`data`: room for the
/// struct at `data`, the auxiliary vector at +256, a path at +2048).
pub(crate) fn restore(t: &mut Tracee, meta: &ImageMeta, data: u64) -> Result<(), CkptError> {
    let mm = &meta.mm;
    let auxv_addr = data + 256;
    let auxv: Vec<u8> = mm.auxv.as_bytes().to_vec();
    if auxv.len() > 2048 {
        return Err(CkptError::Restore("auxiliary vector too large".into()));
    }
    t.write_mem(auxv_addr, &auxv)?;
    let map = |exe_fd: u32| PrctlMmMap {
        start_code: mm.start_code,
        end_code: mm.end_code,
        start_data: mm.start_data,
        end_data: mm.end_data,
        start_brk: mm.start_brk,
        brk: mm.brk,
        start_stack: mm.start_stack,
        arg_start: mm.arg_start,
        arg_end: mm.arg_end,
        env_start: mm.env_start,
        env_end: mm.env_end,
        auxv: auxv_addr,
        auxv_size: u32::try_from(auxv.len()).unwrap_or(u32::MAX), // at most 2048, checked above
        exe_fd,
    };
    let size = size_of::<PrctlMmMap>() as u64;
    // Point /proc/PID/exe at the original executable when it still exists.
    let mut exe_fd = u32::MAX;
    let same_exe = std::fs::read_link(format!("/proc/{}/exe", t.pid))
        .is_ok_and(|p| p.to_string_lossy() == meta.exe);
    if !meta.exe.is_empty() && !same_exe {
        crate::restore::put_path(t, data + 2048, &meta.exe)?;
        if let Ok(fd) = t.syscall_ok(
            "open of the executable",
            libc::SYS_openat,
            [
                abi::reg(libc::AT_FDCWD),
                data + 2048,
                libc::O_RDONLY as u64,
                0,
                0,
                0,
            ],
        ) {
            exe_fd = u32::try_from(fd).unwrap_or(u32::MAX);
        }
    }
    t.write_mem(data, map(exe_fd).as_bytes())?;
    let r = t.syscall(
        libc::SYS_prctl,
        [PR_SET_MM, PR_SET_MM_MAP, data, size, 0, 0],
    )?;
    if r < 0 && exe_fd != u32::MAX {
        // Keep going without /proc/PID/exe rather than fail.
        tracing::warn!(
            errno = -r,
            "PR_SET_MM_MAP with exe_fd failed; retrying without"
        );
        t.write_mem(data, map(u32::MAX).as_bytes())?;
        t.syscall_ok(
            "prctl(PR_SET_MM_MAP)",
            libc::SYS_prctl,
            [PR_SET_MM, PR_SET_MM_MAP, data, size, 0, 0],
        )?;
    } else if r < 0 {
        return Err(CkptError::Injected {
            what: "prctl(PR_SET_MM_MAP)",
            errno: nix::errno::Errno::from_raw(abi::int_result(-r)),
        });
    }
    if exe_fd != u32::MAX {
        t.syscall_ok("close", libc::SYS_close, [u64::from(exe_fd), 0, 0, 0, 0, 0])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prctl_mm_map_is_the_kernels() {
        // linux/prctl.h: eleven __u64, a __u64 pointer, two __u32.
        assert_eq!(size_of::<PrctlMmMap>(), 104);
        assert_eq!(std::mem::offset_of!(PrctlMmMap, auxv_size), 96);
    }

    #[test]
    fn our_own_mm_fields_are_in_order() {
        let mm = capture(mosaic_proto::abi::my_pid()).unwrap();
        assert!(mm.start_code < mm.end_code && mm.end_code <= mm.start_data);
        assert!(mm.arg_start < mm.arg_end && mm.arg_end <= mm.env_start);
        assert!(mm.auxv.len().is_multiple_of(2) && mm.auxv.ends_with(&[0, 0]));
    }
}
