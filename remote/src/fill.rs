//! Private file mappings made while away: the file opened at home, the
//! pages read from there into an anonymous mapping here.

use crate::RemoteError;
use crate::calls::at_home;
use crate::session::{Guest, Notif};
use mosaic_proto::abi;
use mosaic_proto::migrate::Link;
use mosaic_proto::syscalls::codec;

/// Largest private file mapping filled from home (larger ones bring the
/// process home).
pub(crate) const FILL_MAX: u64 = 256 << 20;

/// Whether the guest's call is an `mmap` of a file, private, that we fill
/// from home.
pub(crate) fn private_file_map(n: &Notif) -> bool {
    let (prot, flags) = (n.data.args[2], n.data.args[3]);
    let kind = flags & libc::MAP_TYPE as u64;
    // A read-only shared mapping reads like a private one (ld.so maps
    // /etc/ld.so.cache so, right after exec: it brought every guest
    // captured at exec straight home). It would not see later writes to
    // the file by others.
    let read_only_shared = kind == libc::MAP_SHARED as u64 && prot & libc::PROT_WRITE as u64 == 0;
    i64::from(n.data.nr) == libc::SYS_mmap
        && (kind == libc::MAP_PRIVATE as u64 || read_only_shared)
        && flags & libc::MAP_ANONYMOUS as u64 == 0
        && n.data.args[1] > 0
        && n.data.args[1] <= FILL_MAX
}

/// A private file mapping made while away: the file's bytes are read at
/// home (`pread64` on the home descriptor, forwarded like any call), an
/// anonymous private mapping with the same address, length, protection and
/// other flags is made in the guest (injected: the guest is stopped for it,
/// its own call made to look interrupted and then ended with the result),
/// and the bytes are written into it. The mapping then holds what a private
/// mapping of the file would have held (bytes past the end of the file are
/// zeros, as in the file's last page).
pub(crate) fn map_private_file(
    g: &Guest,
    link: &mut dyn Link,
    n: &Notif,
) -> Result<(), RemoteError> {
    let [addr, len, prot, flags, fd, offset] = n.data.args;
    let mut data: Vec<u8> = Vec::with_capacity(abi::usize_of(len));
    while (data.len() as u64) < len {
        let want = (len - data.len() as u64).min(codec::MAX_BUF);
        let at = offset + data.len() as u64;
        // The buffer pointer only has to be non-null: home allocates.
        let (ret, outbufs) = at_home(
            link,
            g,
            libc::SYS_pread64,
            [fd, 1, want, at, 0, 0],
            Vec::new(),
        )?;
        if ret < 0 {
            // EBADF and friends, as mmap would say (EACCES for a
            // write-only descriptor becomes EBADF).
            g.answer(n.id, ret);
            return Ok(());
        }
        let got = outbufs
            .into_iter()
            .next()
            .map(|b| b.1.into_vec())
            .unwrap_or_default();
        let short = (got.len() as u64) < want;
        data.extend_from_slice(&got);
        if short {
            break; // end of file
        }
    }
    // Stopped in the calling thread, whose call it ends (any thread's
    // mapping is the process's).
    let tid = nix::unistd::Pid::from_raw(abi::pid(n.pid));
    let mut t = g.stop_thread(tid, Some(n.id))?;
    let mut regs = t.regs()?;
    // It stopped right after its own `syscall` instruction.
    t.set_syscall_insn(regs.rip - 2);
    let anon =
        (flags & !(libc::MAP_TYPE as u64)) | (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    let mapped = t.syscall(libc::SYS_mmap, [addr, len, prot, anon, u64::MAX, 0])?;
    if mapped >= 0 && !data.is_empty() {
        t.write_mem(abi::reg_long(mapped), &data)?;
    }
    // Its call returns the mapping (or the error), not restarted.
    regs.rax = abi::reg_long(mapped);
    regs.orig_rax = u64::MAX;
    t.set_regs(&regs)?;
    t.release()?;
    Ok(())
}
