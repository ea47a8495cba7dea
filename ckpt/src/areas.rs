//! Memory areas, capture and restore side by side: what each area is
//! (anonymous, the stack, a private or shared file mapping, the vDSO's),
//! its pages as the pagemap tells them, and where its file is found again
//! when it is restored (here, or under a guest's `/mfs/<home>`).

use mosaic_proto::abi;
use mosaic_proto::image::{Backing, FileId, PAGE_SIZE, Vma};

use crate::capture::CaptureOptions;
use crate::procfs::{MapLine, PM_FILE, PM_PRESENT, PM_SWAPPED, Pagemap};
use crate::ptrace::Tracee;
use crate::{CkptError, RestoreOptions};

pub(crate) fn capture(
    pid: i32,
    m: &MapLine,
    pagemap: &Pagemap,
    opts: &CaptureOptions,
) -> Result<Option<Vma>, CkptError> {
    // For an embedded file mapping: how many of its pages the file covers.
    let mut file_pages = u64::MAX;
    let backing = match m.name.as_str() {
        "[vsyscall]" => return Ok(None),
        "[vdso]" => Backing::Vdso,
        "[vvar]" => Backing::Vvar,
        "[vvar_vclock]" => Backing::VvarVclock,
        "[stack]" => Backing::Stack,
        name if m.inode != 0 && name.starts_with('/') => {
            let st = std::fs::metadata(name).map_err(|e| CkptError::Io(name.to_string(), e))?;
            use std::os::unix::fs::MetadataExt;
            if st.ino() != m.inode {
                return Err(CkptError::CantMove {
                    pid,
                    reasons: vec![format!("{name} was replaced since the process mapped it")],
                });
            }
            let file = || {
                let mut id = file_id(name, &st);
                if let Some(rest) = opts
                    .files_from
                    .as_deref()
                    .and_then(|root| std::path::Path::new(name).strip_prefix(root).ok())
                {
                    id.path = format!("/{}", rest.display());
                    (id.dev, id.inode) = (0, 0);
                }
                id
            };
            if m.shared && m.write {
                // Its changes must reach the file: never a copy.
                if opts.embed_files {
                    return Err(CkptError::CantMove {
                        pid,
                        reasons: vec![format!(
                            "it has a writable shared mapping of {name}, which a node without /mfs cannot map"
                        )],
                    });
                }
                Backing::SharedFile {
                    file: file(),
                    offset: m.offset,
                }
            } else if m.shared {
                // Read-only shared mappings.
                Backing::File {
                    file: file(),
                    offset: m.offset,
                }
            } else if opts.embed_files {
                file_pages = st.size().saturating_sub(m.offset).div_ceil(PAGE_SIZE);
                Backing::EmbeddedFile {
                    path: name.to_string(),
                    offset: m.offset,
                }
            } else {
                Backing::File {
                    file: file(),
                    offset: m.offset,
                }
            }
        }
        _ => Backing::Anon,
    };
    let carries = |i: usize, e: u64| -> bool {
        match &backing {
            // Every page the file has, touched or not: the file may be gone on restore.
            Backing::EmbeddedFile { .. } => (i as u64) < file_pages,
            Backing::Vdso | Backing::Vvar | Backing::VvarVclock => false,
            // Only the private copies: pages still the file's come from it.
            Backing::File { .. } if m.shared => false,
            Backing::SharedFile { .. } => false,
            Backing::File { .. } => {
                e & PM_SWAPPED != 0 || (e & PM_PRESENT != 0 && e & PM_FILE == 0)
            }
            _ => e & (PM_PRESENT | PM_SWAPPED) != 0,
        }
    };
    let mut pages: Vec<(u64, u64)> = Vec::new();
    if !matches!(backing, Backing::Vdso | Backing::Vvar | Backing::VvarVclock) {
        let entries = pagemap.entries(m.start, m.end)?;
        for (i, e) in entries.iter().enumerate() {
            if !carries(i, *e) {
                continue;
            }
            let addr = m.start + i as u64 * PAGE_SIZE;
            match pages.last_mut() {
                Some((start, n)) if *start + *n * PAGE_SIZE == addr => *n += 1,
                _ => pages.push((addr, 1)),
            }
        }
    }
    let prot = m.prot() | if m.shared { SHARED_FLAG } else { 0 };
    Ok(Some(Vma {
        start: m.start,
        end: m.end,
        prot,
        backing,
        pages,
    }))
}

/// Marks a shared mapping in `Vma::prot` (above the PROT_* bits).
pub const SHARED_FLAG: u32 = 1 << 16;

pub(crate) fn file_id(path: &str, st: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId {
        path: path.to_string(),
        dev: st.dev(),
        inode: st.ino(),
        size: st.size(),
        mtime_ns: st.mtime() * 1_000_000_000 + st.mtime_nsec(),
    }
}

/// Absolute `path` seen under `root` (a guest's `/mfs/<home>`).
pub(crate) fn under(root: &std::path::Path, path: &str) -> String {
    root.join(path.trim_start_matches('/'))
        .display()
        .to_string()
}

/// Where file `f` of an image is now: its own path if the file there is
/// the same (size, time, inode, device; size and time only when the image
/// knows no inode: a file a guest mapped through `/mfs`), else the same
/// file under `fallback` (size and time: another machine's inode numbers
/// differ).
pub(crate) fn locate(f: &FileId, fallback: Option<&std::path::Path>) -> Result<String, CkptError> {
    // The identity of the file at `path` now.
    let now = |path: &str| std::fs::metadata(path).map(|st| file_id(path, &st));
    let here = now(&f.path);
    if let Ok(id) = &here
        && (id.size, id.mtime_ns) == (f.size, f.mtime_ns)
        && ((f.inode, f.dev) == (0, 0) || (id.inode, id.dev) == (f.inode, f.dev))
    {
        return Ok(f.path.clone());
    }
    if let Some(root) = fallback {
        let there = under(root, &f.path);
        if let Ok(id) = now(&there)
            && (id.size, id.mtime_ns) == (f.size, f.mtime_ns)
        {
            return Ok(there);
        }
    }
    Err(CkptError::FileChanged {
        path: f.path.clone(),
        what: match here {
            Err(e) => e.to_string(),
            Ok(_) => "size, time or inode differ".into(),
        },
    })
}

/// Where the file of a writable shared mapping is: with a fallback (a
/// guest's `/mfs/<home>`), only there: a file of the same name here is
/// another file, and the changes must reach the home's; a process whose
/// files stay elsewhere (`no_files`) and no fallback: nowhere. Its size and
/// time are not compared: the image carries none of its pages, so what the
/// mapping shows is the file as it is now, as it would be natively (and
/// `/mfs` may still hold attributes of a second ago: a sqlite moved back
/// out within a second failed so). Here, the inode must be the capture's.
pub(crate) fn locate_shared(f: &FileId, opts: &RestoreOptions) -> Result<String, CkptError> {
    let changed = |what: String| CkptError::FileChanged {
        path: f.path.clone(),
        what,
    };
    let at = match opts.file_fallback.as_deref() {
        Some(root) => under(root, &f.path),
        None if opts.no_files => {
            return Err(changed(
                "it maps it shared and writable, which needs /mfs on this node".into(),
            ));
        }
        None => f.path.clone(),
    };
    let st = std::fs::metadata(&at).map_err(|e| changed(format!("{at}: {e}")))?;
    let id = file_id(&at, &st);
    let same = opts.file_fallback.is_some()
        || (f.inode, f.dev) == (0, 0)
        || (id.inode, id.dev) == (f.inode, f.dev);
    if !st.is_file() || !same {
        return Err(changed(format!(
            "{at} is not the file it maps shared and writable"
        )));
    }
    Ok(at)
}

/// Descriptors of mapped files in the process, by path and whether open
/// for writing.
pub(crate) type OpenFiles = std::collections::HashMap<(String, bool), u64>;

pub(crate) fn close_mapped_files(
    t: &mut Tracee,
    open_files: &mut OpenFiles,
) -> Result<(), CkptError> {
    for (_, fd) in open_files.drain() {
        t.syscall_ok("close", libc::SYS_close, [fd, 0, 0, 0, 0, 0])?;
    }
    Ok(())
}

pub(crate) fn map_area(
    t: &mut Tracee,
    v: &Vma,
    data: u64,
    open_files: &mut OpenFiles,
) -> Result<(), CkptError> {
    let prot = u64::from(v.prot & 7);
    let len = v.end - v.start;
    let fixed = libc::MAP_FIXED as u64;
    match &v.backing {
        Backing::Vdso | Backing::Vvar | Backing::VvarVclock => return Ok(()),
        Backing::Anon | Backing::EmbeddedFile { .. } => {
            t.mmap_anon(
                "mmap of an anonymous area",
                v.start,
                len,
                (v.prot & 7).cast_signed(),
                fixed,
            )?;
        }
        Backing::Stack => {
            let growsdown = libc::MAP_GROWSDOWN as u64;
            t.mmap_anon(
                "mmap of the stack",
                v.start,
                len,
                (v.prot & 7).cast_signed(),
                fixed | growsdown,
            )?;
        }
        Backing::File { file, offset } | Backing::SharedFile { file, offset } => {
            // One open per file and access, however many areas map it (a
            // library has four or five); closed by `close_mapped_files`.
            let write = matches!(v.backing, Backing::SharedFile { .. });
            let fd = match open_files.get(&(file.path.clone(), write)) {
                Some(fd) => *fd,
                None => {
                    crate::restore::put_path(t, data, &file.path)?;
                    let access = if write { libc::O_RDWR } else { libc::O_RDONLY };
                    let fd = t.syscall_ok(
                        "open of a mapped file",
                        libc::SYS_openat,
                        [abi::reg(libc::AT_FDCWD), data, abi::reg(access), 0, 0, 0],
                    )?;
                    open_files.insert((file.path.clone(), write), fd);
                    fd
                }
            };
            let share = if v.prot & SHARED_FLAG != 0 {
                libc::MAP_SHARED
            } else {
                libc::MAP_PRIVATE
            };
            t.syscall_ok(
                "mmap of a file",
                libc::SYS_mmap,
                [v.start, len, prot, abi::reg(share) | fixed, fd, *offset],
            )?;
        }
    }
    Ok(())
}
