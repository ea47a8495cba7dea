//! The scratch area in the placeholder where forwarded calls' buffers go.

use mosaic_ckpt::CkptError;
use mosaic_ckpt::ptrace::Tracee;

/// Scratch memory inside the placeholder for the buffers of one call,
/// mapped on first use and grown (between calls) as needed.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) base: u64,
    cap: u64,
    used: u64,
}

const ALIGN: u64 = 16;

impl Scratch {
    /// Starts a call that needs at most `len` bytes.
    pub(crate) fn begin(&mut self, t: &mut Tracee, len: u64) -> Result<(), CkptError> {
        self.used = 0;
        if len <= self.cap {
            return Ok(());
        }
        let new_cap = len.max(1 << 20).next_power_of_two();
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let addr = t.mmap_anon("mmap of the deputy's scratch", 0, new_cap, rw, 0)?;
        if self.cap > 0 {
            t.syscall_ok(
                "munmap of the old scratch",
                libc::SYS_munmap,
                [self.base, self.cap, 0, 0, 0, 0],
            )?;
        }
        self.base = addr;
        self.cap = new_cap;
        Ok(())
    }

    pub(crate) fn alloc(&mut self, len: u64) -> Result<u64, CkptError> {
        let len = len.max(1).div_ceil(ALIGN) * ALIGN;
        if self.used + len > self.cap {
            return Err(CkptError::Restore("deputy scratch overflow".into()));
        }
        let at = self.base + self.used;
        self.used += len;
        Ok(at)
    }

    pub(crate) fn put(&mut self, t: &mut Tracee, data: &[u8]) -> Result<u64, CkptError> {
        let at = self.alloc(data.len() as u64)?;
        if !data.is_empty() {
            t.write_mem(at, data)?;
        }
        Ok(at)
    }
}
