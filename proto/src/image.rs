//! The process image: a single-threaded process's user context in transit.
//!
//! On disk and on the wire an image is one stream:
//!
//! ```text
//! "MOSAICIM" | version u32 | meta length u64 | meta (JSON) | pages | crc32 u32 | "MOSAICND"
//! ```
//!
//! `meta` is an [`ImageMeta`]: registers, signal state, mm fields, the list
//! of memory areas and, for each, the runs of pages whose contents follow in
//! `pages`, in order, 4096 bytes each. The CRC covers everything before it.
//! A reader checks magic, version, lengths and CRC and says which is wrong;
//! it never trusts a length it has not bounded.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// First bytes of an image.
pub const IMAGE_MAGIC: &[u8; 8] = b"MOSAICIM";
/// Last bytes of an image.
pub const IMAGE_END: &[u8; 8] = b"MOSAICND";
/// The version this code writes and reads.
/// 2: a thread's own state (registers, mask, alternate stack, TID address,
/// robust list, rseq) is one of `threads`, no longer fields of the process.
pub const IMAGE_VERSION: u32 = 2;
/// Page size of the images (x86-64).
pub const PAGE_SIZE: u64 = 4096;
/// Most threads an image may hold (a restore creates each).
pub const MAX_THREADS: usize = 1 << 14;
/// Largest metadata accepted (a process has at most 65530 areas by default).
pub const MAX_META_LEN: u64 = 64 << 20;

/// Why an image cannot be read.
#[derive(Debug, Error)]
pub enum ImageError {
    #[error("not a mosaic image (bad magic)")]
    BadMagic,
    #[error("image version {found}; this mosaic reads version {IMAGE_VERSION}")]
    WrongVersion { found: u32 },
    #[error("image is truncated: {0}")]
    Truncated(String),
    #[error("image is corrupt: {0}")]
    Corrupt(String),
    #[error("image I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("image cannot be restored: {0}")]
    Unsupported(String),
}

/// General registers as `struct user_regs_struct` (x86-64), in kernel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

/// One signal's disposition as the kernel stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigAction {
    pub signo: u32,
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// The alternate signal stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AltStack {
    pub sp: u64,
    pub flags: i32,
    pub size: u64,
}

/// A queued signal, as the raw 128-byte `siginfo_t`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignal {
    /// Whether it was queued to the whole process (else to the thread).
    pub shared: bool,
    pub siginfo: Vec<u8>,
}

/// What belongs to one thread rather than to its process: where it is
/// (registers, and so the call it was interrupted in), what it blocks, its
/// alternate signal stack, and what it registered with the kernel by its
/// own calls (`set_tid_address`, `set_robust_list`, `rseq`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadImage {
    /// Its TID when captured.
    pub tid: i32,
    pub regs: Regs,
    /// `NT_X86_XSTATE` register set (FPU, SSE, AVX, ...).
    pub xstate: Vec<u8>,
    pub sigmask: u64,
    pub altstack: AltStack,
    pub tid_address: u64,
    /// `get_robust_list`: the list head and its length.
    pub robust_list: (u64, u64),
    pub rseq: Option<Rseq>,
    /// Its name (`/proc/PID/task/TID/comm`, `PR_SET_NAME`; empty in older
    /// images: left as the restorer's).
    #[serde(default)]
    pub name: String,
    /// Signals queued to this thread alone (`tgkill`, `pthread_kill`, a
    /// `SIGEV_THREAD_ID` timer), as raw 128-byte `siginfo_t`s: another
    /// thread of the process than the main one (the main thread's are in
    /// [`ImageMeta::pending`]).
    #[serde(default)]
    pub pending: Vec<Vec<u8>>,
    /// CPUs it may run on, when it differs from the process's
    /// ([`ImageMeta::cpus`]; empty: as the process).
    #[serde(default)]
    pub cpus: Vec<usize>,
}

/// The mm fields `PR_SET_MM_MAP` restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MmFields {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// The auxiliary vector, as (type, value) words.
    pub auxv: Vec<u64>,
}

/// rseq registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rseq {
    pub addr: u64,
    pub len: u32,
    pub sig: u32,
}

/// A resource limit (`getrlimit`): `u64::MAX` is RLIM_INFINITY.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// CPU time in nanoseconds, split into user and system time as the kernel
/// splits it for `getrusage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTime {
    pub user_ns: u64,
    pub sys_ns: u64,
}

impl CpuTime {
    pub fn total_ns(self) -> u64 {
        self.user_ns.saturating_add(self.sys_ns)
    }

    pub fn plus(self, o: CpuTime) -> CpuTime {
        CpuTime {
            user_ns: self.user_ns.saturating_add(o.user_ns),
            sys_ns: self.sys_ns.saturating_add(o.sys_ns),
        }
    }

    /// What was added since `earlier` (never negative).
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user_ns: self.user_ns.saturating_sub(earlier.user_ns),
            sys_ns: self.sys_ns.saturating_sub(earlier.sys_ns),
        }
    }
}

/// A POSIX timer (`timer_create`), restored under the same id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PosixTimer {
    /// The id the program holds.
    pub id: i32,
    pub clock: i32,
    /// `sigev_notify`: SIGEV_SIGNAL, SIGEV_NONE, or SIGEV_THREAD_ID (to
    /// thread `tid`).
    pub notify: i32,
    pub signo: i32,
    /// `sigev_value`, given back with each signal.
    pub sigval: u64,
    pub interval_ns: u64,
    /// Left until it fires (0: disarmed).
    pub value_ns: u64,
    /// The thread a SIGEV_THREAD_ID timer signals, as the process names
    /// it (one of its [`ThreadImage`] TIDs); 0 in images before it was
    /// kept (the main thread).
    #[serde(default)]
    pub tid: i32,
}

/// Identity of a file, to tell whether it changed since the capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub path: String,
    pub dev: u64,
    pub inode: u64,
    pub size: u64,
    pub mtime_ns: i64,
}

/// What backs a memory area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backing {
    /// Private anonymous memory (also `[heap]`).
    Anon,
    /// The main stack (grows down).
    Stack,
    /// A private file mapping at `offset`; pages not in the image come
    /// from the file.
    File {
        file: FileId,
        offset: u64,
    },
    /// A private file mapping whose every present page is in the image (the
    /// file is not needed on restore).
    EmbeddedFile {
        path: String,
        offset: u64,
    },
    /// A writable shared mapping of a regular file at `offset`, which no
    /// other process maps: its pages are the file's (the capturer wrote
    /// them back first), and the restored process maps the very file
    /// (through `/mfs` away from home), so its changes reach it.
    SharedFile {
        file: FileId,
        offset: u64,
    },
    /// `[vdso]`, `[vvar]`, `[vvar_vclock]`: placed by the kernel on restore.
    Vdso,
    Vvar,
    VvarVclock,
}

/// One memory area (VMA) and the pages of it the image carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    /// PROT_READ | PROT_WRITE | PROT_EXEC bits.
    pub prot: u32,
    pub backing: Backing,
    /// Runs of (first page address, page count) whose contents are in the
    /// image's page section, in order.
    pub pages: Vec<(u64, u64)>,
}

impl Vma {
    /// Pages carried for this area.
    pub fn page_count(&self) -> u64 {
        self.pages.iter().map(|r| r.1).sum()
    }
}

/// How a file descriptor was open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FdKind {
    /// A regular file or device by path (reopened on restore).
    Path { path: String, flags: i32, pos: u64 },
    /// One end of a pipe whose both ends the process holds (a self-pipe),
    /// with what was buffered in it (on the read end).
    Pipe {
        id: u64,
        write: bool,
        flags: i32,
        #[serde(default)]
        contents: Vec<u8>,
    },
    /// The same open file description as the earlier descriptor `of`
    /// (`2>&1`, `dup`): restored by duplicating it, so they share an offset.
    Dup { of: i32, cloexec: bool },
    /// Something a stand-alone restore cannot reopen: pipe, socket, tty, ...
    Other { what: String },
}

/// One open file descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdInfo {
    pub fd: i32,
    pub kind: FdKind,
}

/// Everything of an image but the page contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageMeta {
    /// PID the process had when captured.
    pub pid: i32,
    /// Path of its executable.
    pub exe: String,
    /// Its command line, for humans.
    pub cmdline: Vec<String>,
    /// Its threads' own state, the main thread first (whose TID is the
    /// PID), each with the TID it had: glibc and the kernel keep TIDs in
    /// the process's memory (a PI mutex's owner, a robust list's entries),
    /// so a restore gives every thread its own again.
    pub threads: Vec<ThreadImage>,
    /// Dispositions that are not SIG_DFL.
    pub sigactions: Vec<SigAction>,
    pub pending: Vec<PendingSignal>,
    pub mm: MmFields,
    pub vmas: Vec<Vma>,
    pub fds: Vec<FdInfo>,
    /// Interval timers (`setitimer`): (which, interval µs, value µs).
    #[serde(default)]
    pub itimers: Vec<(i32, u64, u64)>,
    /// POSIX timers.
    #[serde(default)]
    pub posix_timers: Vec<PosixTimer>,
    /// Resource limits (empty in older images: the restorer's apply).
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// CPUs the process was allowed to run on (empty: any).
    #[serde(default)]
    pub cpus: Vec<usize>,
    /// CPU time the process had used when captured, as the kernel it was
    /// captured on counted it.
    #[serde(default)]
    pub cpu_counted: CpuTime,
    /// CPU time it used before, under other kernels, which that kernel did
    /// not count (given by whoever captured it: the time it spent away).
    #[serde(default)]
    pub cpu_elsewhere: CpuTime,
}

impl ImageMeta {
    /// All the CPU time the process has used, wherever it ran.
    pub fn cpu_total(&self) -> CpuTime {
        self.cpu_counted.plus(self.cpu_elsewhere)
    }

    /// Total pages carried.
    pub fn page_count(&self) -> u64 {
        self.vmas.iter().map(Vma::page_count).sum()
    }

    /// Checks what a corrupt or hostile image could get wrong, so that a
    /// restore never acts on nonsense.
    pub fn validate(&self) -> Result<(), ImageError> {
        let bad = |m: String| Err(ImageError::Corrupt(m));
        let mut last_end = 0;
        for v in &self.vmas {
            if v.start % PAGE_SIZE != 0 || v.end % PAGE_SIZE != 0 || v.start >= v.end {
                return bad(format!(
                    "memory area {:#x}-{:#x} is not page aligned",
                    v.start, v.end
                ));
            }
            if v.start < last_end {
                return bad(format!("memory areas overlap at {:#x}", v.start));
            }
            last_end = v.end;
            for &(addr, n) in &v.pages {
                let end = n.checked_mul(PAGE_SIZE).and_then(|l| addr.checked_add(l));
                if addr % PAGE_SIZE != 0 || addr < v.start || end.is_none_or(|e| e > v.end) {
                    return bad(format!(
                        "page run {addr:#x}+{n} lies outside its area {:#x}-{:#x}",
                        v.start, v.end
                    ));
                }
            }
        }
        let Some(main) = self.threads.first() else {
            return bad("the image holds no thread".into());
        };
        if self.threads.len() > MAX_THREADS {
            return bad(format!("the image holds {} threads", self.threads.len()));
        }
        if main.tid != self.pid {
            return bad(format!(
                "its first thread is {}, not the process {}",
                main.tid, self.pid
            ));
        }
        let mut tids: Vec<i32> = self.threads.iter().map(|t| t.tid).collect();
        tids.sort_unstable();
        if tids.first().is_some_and(|&t| t < 1) || tids.windows(2).any(|w| w[0] == w[1]) {
            return bad("its thread IDs are not distinct positive numbers".into());
        }
        if self
            .threads
            .iter()
            .any(|t| t.pending.len() > 1 << 16 || t.pending.iter().any(|p| p.len() != 128))
        {
            return bad("a thread's queued signals are malformed".into());
        }
        if self.threads.iter().any(|t| t.xstate.len() > 1 << 20) {
            return bad("register state is too large".into());
        }
        Ok(())
    }
}

/// Writes an image as a stream, computing its CRC.
pub struct ImageWriter<W: std::io::Write> {
    out: W,
    crc: crc32fast::Hasher,
    pages_left: u64,
}

impl<W: std::io::Write> ImageWriter<W> {
    /// Writes the header and metadata; then exactly `meta.page_count()`
    /// pages must follow through [`ImageWriter::write_pages`].
    pub fn new(mut out: W, meta: &ImageMeta) -> Result<Self, ImageError> {
        let json = serde_json::to_vec(meta).map_err(|e| ImageError::Corrupt(e.to_string()))?;
        let mut crc = crc32fast::Hasher::new();
        let mut head = Vec::with_capacity(20 + json.len());
        head.extend_from_slice(IMAGE_MAGIC);
        head.extend_from_slice(&IMAGE_VERSION.to_le_bytes());
        head.extend_from_slice(&(json.len() as u64).to_le_bytes());
        head.extend_from_slice(&json);
        crc.update(&head);
        out.write_all(&head)?;
        Ok(ImageWriter {
            out,
            crc,
            pages_left: meta.page_count(),
        })
    }

    /// Appends page contents (a multiple of the page size).
    pub fn write_pages(&mut self, data: &[u8]) -> Result<(), ImageError> {
        let n = data.len() as u64 / PAGE_SIZE;
        if !(data.len() as u64).is_multiple_of(PAGE_SIZE) || n > self.pages_left {
            return Err(ImageError::Corrupt(
                "page data does not match the page list".into(),
            ));
        }
        self.pages_left -= n;
        self.crc.update(data);
        self.out.write_all(data)?;
        Ok(())
    }

    /// Writes the trailer; fails if pages are missing.
    pub fn finish(mut self) -> Result<W, ImageError> {
        if self.pages_left != 0 {
            return Err(ImageError::Corrupt(format!(
                "{} pages were never written",
                self.pages_left
            )));
        }
        let crc = self.crc.finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(IMAGE_END)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads an image as a stream: metadata first, then pages, then the CRC.
pub struct ImageReader<R: std::io::Read> {
    input: R,
    crc: crc32fast::Hasher,
    pages_left: u64,
}

fn read_exact_or<R: std::io::Read>(
    r: &mut R,
    buf: &mut [u8],
    what: &str,
) -> Result<(), ImageError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated(format!("it ends inside the {what}"))
        }
        _ => ImageError::Io(e),
    })
}

impl<R: std::io::Read> ImageReader<R> {
    /// Reads and checks the header and metadata.
    pub fn new(mut input: R) -> Result<(Self, ImageMeta), ImageError> {
        let mut head = [0u8; 20];
        read_exact_or(&mut input, &mut head, "header")?;
        if &head[..8] != IMAGE_MAGIC {
            return Err(ImageError::BadMagic);
        }
        let version = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        if version != IMAGE_VERSION {
            return Err(ImageError::WrongVersion { found: version });
        }
        let len = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
        if len > MAX_META_LEN {
            return Err(ImageError::Corrupt(format!(
                "metadata length {len} is implausible"
            )));
        }
        let mut json = vec![0u8; crate::abi::usize_of(len)];
        read_exact_or(&mut input, &mut json, "metadata")?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(&json);
        let meta: ImageMeta = serde_json::from_slice(&json)
            .map_err(|e| ImageError::Corrupt(format!("metadata does not parse: {e}")))?;
        meta.validate()?;
        let pages_left = meta.page_count();
        Ok((
            ImageReader {
                input,
                crc,
                pages_left,
            },
            meta,
        ))
    }

    /// Reads the next `buf.len() / PAGE_SIZE` pages.
    pub fn read_pages(&mut self, buf: &mut [u8]) -> Result<(), ImageError> {
        let n = buf.len() as u64 / PAGE_SIZE;
        if !(buf.len() as u64).is_multiple_of(PAGE_SIZE) || n > self.pages_left {
            return Err(ImageError::Corrupt(
                "asked for pages the image does not list".into(),
            ));
        }
        read_exact_or(&mut self.input, buf, "page contents")?;
        self.pages_left -= n;
        self.crc.update(buf);
        Ok(())
    }

    /// Checks the CRC and trailer once every page was read.
    pub fn finish(mut self) -> Result<(), ImageError> {
        if self.pages_left != 0 {
            return Err(ImageError::Corrupt(format!(
                "{} pages were not read",
                self.pages_left
            )));
        }
        let mut tail = [0u8; 12];
        read_exact_or(&mut self.input, &mut tail, "trailer")?;
        let want = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes"));
        if &tail[4..] != IMAGE_END {
            return Err(ImageError::Corrupt("bad trailer".into()));
        }
        let got = self.crc.finalize();
        if got != want {
            return Err(ImageError::Corrupt(format!(
                "checksum mismatch (stored {want:08x}, computed {got:08x})"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ImageMeta {
        ImageMeta {
            pid: 42,
            exe: "/bin/true".into(),
            cmdline: vec!["true".into()],
            threads: vec![ThreadImage {
                tid: 42,
                regs: Regs::default(),
                xstate: vec![1, 2, 3],
                sigmask: 0,
                altstack: AltStack::default(),
                tid_address: 0,
                robust_list: (0, 0),
                rseq: None,
                name: "true".into(),
                pending: vec![],
                cpus: vec![],
            }],
            sigactions: vec![],
            pending: vec![],
            mm: MmFields::default(),
            vmas: vec![Vma {
                start: 0x10000,
                end: 0x13000,
                prot: 3,
                backing: Backing::Anon,
                pages: vec![(0x10000, 1), (0x12000, 1)],
            }],
            fds: vec![],
            itimers: vec![],
            posix_timers: vec![],
            rlimits: vec![],
            cpus: vec![],
            cpu_counted: CpuTime::default(),
            cpu_elsewhere: CpuTime::default(),
        }
    }

    fn image() -> Vec<u8> {
        let mut w = ImageWriter::new(Vec::new(), &meta()).unwrap();
        w.write_pages(&[7u8; 8192]).unwrap();
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
        let (mut r, m) = ImageReader::new(bytes)?;
        let mut pages = vec![0u8; crate::abi::usize_of(m.page_count() * PAGE_SIZE)];
        r.read_pages(&mut pages)?;
        r.finish()?;
        Ok(pages)
    }

    #[test]
    fn round_trip() {
        assert_eq!(read_all(&image()).unwrap(), vec![7u8; 8192]);
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_caught() {
        let good = image();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            assert!(read_all(&bad).is_err(), "flip at {i} went unnoticed");
        }
        for len in 0..good.len() {
            assert!(
                read_all(&good[..len]).is_err(),
                "truncation at {len} went unnoticed"
            );
        }
    }

    #[test]
    fn wrong_version_says_so() {
        let mut bad = image();
        bad[8] = 9;
        let e = read_all(&bad).unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
    }

    #[test]
    fn pages_outside_their_area_are_refused() {
        let mut m = meta();
        m.vmas[0].pages = vec![(0x12000, 2)];
        assert!(m.validate().is_err());
        m.vmas[0].pages = vec![(0x12000, u64::MAX / 2)];
        assert!(m.validate().is_err());
    }

    #[test]
    fn threads_are_distinct_and_led_by_the_process() {
        let mut m = meta();
        m.threads.clear();
        assert!(m.validate().unwrap_err().to_string().contains("no thread"));
        let one = meta().threads[0].clone();
        m.threads = vec![one.clone(), one.clone()];
        let e = m.validate().unwrap_err().to_string();
        assert!(e.contains("not distinct"), "{e}");
        m.threads[1].tid = 43;
        m.validate().unwrap();
        m.threads.swap(0, 1);
        let e = m.validate().unwrap_err().to_string();
        assert!(e.contains("not the process"), "{e}");
        m.threads.swap(0, 1);
        m.threads[1].pending = vec![vec![0; 12]];
        assert!(m.validate().is_err());
    }
}
