//! A synthetic, read-only tree served beside the export: the node's
//! `proc` (attach name `proc`), made by its daemon on each lookup, the
//! way `/proc` is made by the kernel.
//!
//! The server asks a [`Synthetic`] for a path (a list of names from the
//! tree's root) and gets a directory's names or a file's bytes. A file's
//! bytes are taken once when it is opened, so one read of a table is one
//! consistent snapshot.

use std::collections::HashMap;

use nix::errno::Errno;
use rs9p::{DirEntry, DirEntryData, FCall, GetAttrMask, QId, QIdType, Stat, Time};

use crate::export::FsError;

/// The attach name of the synthetic tree.
pub const ANAME: &str = "proc";

/// One place of a synthetic tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SynthNode {
    /// A directory and the names in it.
    Dir(Vec<String>),
    /// A file and its bytes.
    File(Vec<u8>),
}

/// What makes a synthetic tree (a node's daemon).
pub trait Synthetic: Send + Sync {
    /// What `path` is now, if it exists.
    fn get(&self, path: &[String]) -> Option<SynthNode>;
}

/// One fid on the synthetic tree.
pub(crate) struct SFid {
    path: Vec<String>,
    /// What it was when opened.
    open: Option<SynthNode>,
}

/// The synthetic side of a session.
#[derive(Default)]
pub(crate) struct SynthFids {
    fids: HashMap<u32, SFid>,
}

fn err(e: Errno) -> FsError {
    FsError(e)
}

/// A stable qid path for a synthetic path (FNV-1a; the top bit set keeps
/// it apart from the inode numbers of real files in the client's tables).
fn qid_path(path: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for name in path {
        for b in name.bytes().chain(std::iter::once(b'/')) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h | 1 << 63
}

fn qid_of(path: &[String], node: &SynthNode) -> QId {
    QId {
        typ: match node {
            SynthNode::Dir(_) => QIdType::DIR,
            SynthNode::File(_) => QIdType::FILE,
        },
        version: 0,
        path: qid_path(path),
    }
}

fn stat_of(node: &SynthNode) -> Stat {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let t = Time {
        sec: now.as_secs(),
        nsec: u64::from(now.subsec_nanos()),
    };
    let (mode, size, nlink) = match node {
        SynthNode::Dir(names) => (libc::S_IFDIR | 0o555, 0, 2 + names.len() as u64),
        SynthNode::File(bytes) => (libc::S_IFREG | 0o444, bytes.len() as u64, 1),
    };
    Stat {
        mode,
        uid: 0,
        gid: 0,
        nlink,
        rdev: 0,
        size,
        blksize: 4096,
        blocks: size.div_ceil(512),
        atime: t,
        mtime: t,
        ctime: t,
    }
}

impl SynthFids {
    pub(crate) fn contains(&self, fid: u32) -> bool {
        self.fids.contains_key(&fid)
    }

    pub(crate) fn len(&self) -> usize {
        self.fids.len()
    }

    pub(crate) fn clear(&mut self) {
        self.fids.clear();
    }

    pub(crate) fn attach(&mut self, tree: &dyn Synthetic, fid: u32) -> Result<FCall, FsError> {
        let root = tree.get(&[]).ok_or(err(Errno::ENOENT))?;
        self.fids.insert(
            fid,
            SFid {
                path: Vec::new(),
                open: None,
            },
        );
        Ok(FCall::RAttach {
            qid: qid_of(&[], &root),
        })
    }

    fn path(&self, fid: u32) -> Result<&[String], FsError> {
        Ok(&self.fids.get(&fid).ok_or(err(Errno::EBADF))?.path)
    }

    /// Answers a request on a synthetic fid (the caller checked that its
    /// fid is one, and that a new fid is free).
    pub(crate) fn answer(
        &mut self,
        tree: &dyn Synthetic,
        req: FCall,
        iounit: u32,
    ) -> Result<FCall, FsError> {
        Ok(match req {
            FCall::TWalk {
                fid,
                newfid,
                wnames,
            } => {
                let mut path = self.path(fid)?.to_vec();
                let mut wqids = Vec::new();
                for (i, name) in wnames.iter().enumerate() {
                    if name == ".." {
                        path.pop();
                    } else if name.is_empty() || name == "." || name.contains('/') {
                        return Err(err(Errno::EINVAL));
                    } else {
                        path.push(name.clone());
                    }
                    match tree.get(&path) {
                        Some(node) => wqids.push(qid_of(&path, &node)),
                        None if i == 0 => return Err(err(Errno::ENOENT)),
                        None => return Ok(FCall::RWalk { wqids }),
                    }
                }
                self.fids.insert(newfid, SFid { path, open: None });
                FCall::RWalk { wqids }
            }
            FCall::TGetAttr { fid, .. } => {
                let path = self.path(fid)?;
                let node = tree.get(path).ok_or(err(Errno::ENOENT))?;
                FCall::RGetAttr {
                    valid: GetAttrMask::BASIC,
                    qid: qid_of(path, &node),
                    stat: stat_of(&node),
                }
            }
            FCall::TlOpen { fid, flags } => {
                if flags.cast_signed() & libc::O_ACCMODE != libc::O_RDONLY
                    || flags.cast_signed() & libc::O_TRUNC != 0
                {
                    return Err(err(Errno::EROFS));
                }
                let path = self.path(fid)?.to_vec();
                let node = tree.get(&path).ok_or(err(Errno::ENOENT))?;
                let qid = qid_of(&path, &node);
                if let Some(f) = self.fids.get_mut(&fid) {
                    f.open = Some(node);
                }
                FCall::RlOpen { qid, iounit }
            }
            FCall::TRead { fid, offset, count } => {
                let f = self.fids.get(&fid).ok_or(err(Errno::EBADF))?;
                let Some(SynthNode::File(bytes)) = &f.open else {
                    return Err(err(Errno::EBADF));
                };
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start
                    .saturating_add(count.min(iounit) as usize)
                    .min(bytes.len());
                FCall::RRead {
                    data: rs9p::Data(bytes[start..end].to_vec()),
                }
            }
            FCall::TReadDir { fid, offset, count } => {
                let f = self.fids.get(&fid).ok_or(err(Errno::EBADF))?;
                let Some(SynthNode::Dir(names)) = &f.open else {
                    return Err(err(Errno::EBADF));
                };
                let mut out = Vec::new();
                let mut size = 0u32;
                for (i, name) in names
                    .iter()
                    .enumerate()
                    .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                {
                    let len = u32::try_from(name.len()).map_or(u32::MAX, |n| n.saturating_add(24));
                    if size + len > count.min(iounit) {
                        break;
                    }
                    size += len;
                    let mut path = f.path.clone();
                    path.push(name.clone());
                    let Some(node) = tree.get(&path) else {
                        continue;
                    };
                    let kind = match node {
                        SynthNode::Dir(_) => libc::DT_DIR,
                        SynthNode::File(_) => libc::DT_REG,
                    };
                    out.push(DirEntry {
                        qid: qid_of(&path, &node),
                        offset: i as u64 + 1,
                        typ: kind,
                        name: name.clone(),
                    });
                }
                FCall::RReadDir {
                    data: DirEntryData::with(out),
                }
            }
            FCall::TClunk { fid } => {
                self.fids.remove(&fid).ok_or(err(Errno::EBADF))?;
                FCall::RClunk
            }
            FCall::TRemove { fid } => {
                self.fids.remove(&fid);
                return Err(err(Errno::EROFS));
            }
            FCall::TFSync { .. } => FCall::RFSync,
            FCall::TReadLink { .. } => return Err(err(Errno::EINVAL)),
            _ => return Err(err(Errno::EROFS)),
        })
    }
}

/// The fid a request works on, and the new fid it makes (if any), for the
/// session to route it.
pub(crate) fn fids_of(req: &FCall) -> (Option<u32>, Option<u32>) {
    match *req {
        FCall::TWalk { fid, newfid, .. } => (Some(fid), Some(newfid)),
        FCall::TGetAttr { fid, .. }
        | FCall::TSetAttr { fid, .. }
        | FCall::TlOpen { fid, .. }
        | FCall::TlCreate { fid, .. }
        | FCall::TRead { fid, .. }
        | FCall::TWrite { fid, .. }
        | FCall::TReadDir { fid, .. }
        | FCall::TSymlink { fid, .. }
        | FCall::TReadLink { fid }
        | FCall::TRename { fid, .. }
        | FCall::TFSync { fid }
        | FCall::TStatFs { fid }
        | FCall::TClunk { fid }
        | FCall::TRemove { fid } => (Some(fid), None),
        FCall::TMkDir { dfid, .. } => (Some(dfid), None),
        FCall::TUnlinkAt { dirfd, .. } => (Some(dirfd), None),
        FCall::TRenameAt { olddirfid, .. } => (Some(olddirfid), None),
        _ => (None, None),
    }
}
