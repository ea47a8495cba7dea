//! The 9P2000.L server of a node: one [`Session`] per connection, over an
//! [`Export`].
//!
//! rs9p gives the message types and their wire format; its own server only
//! listens on an address and hides its dispatcher, while ours must serve
//! over the cluster's authenticated channel, so the dispatch is here: each
//! request is answered in order, synchronously, on the thread that owns the
//! connection. Errors are errnos (`Rlerror`), never a dropped connection.
//!
//! Authentication is the transport's: a session exists only on a channel
//! whose peer proved the cluster key. `Tauth` is therefore answered with
//! ENOENT ("no authentication needed"), which is what 9P2000.L clients
//! such as diod's tools expect.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use rs9p::{
    DirEntry, DirEntryData, FCall, GetAttrMask, Msg, QId, QIdType, SetAttrMask, Stat, StatFs, Time,
};

use crate::export::{Entry, Export, FsError, Handle};
use crate::synth::{SynthFids, Synthetic};

/// The largest message this server takes or sends.
pub const MAX_MSIZE: u32 = (1 << 20) + 4096;
/// The smallest it agrees to.
const MIN_MSIZE: u32 = 512;
/// Fids one session may hold (each holds a descriptor).
pub const MAX_FIDS: usize = 4096;
/// Bytes of a read or write reply around its data.
const IOHDRSZ: u32 = 24;
const AT_REMOVEDIR: u32 = 0x200;
const TWRITE: u8 = 118;
/// Rread's type (for the client's check).
pub(crate) const RREAD: u8 = 117;

/// Whether a message of type `typ` whose data count sits at byte `at` has
/// that many bytes after it (rs9p allocates the count before reading: a
/// forged count must not make a 4 GiB allocation). Other types pass.
pub(crate) fn data_fits(msg: &[u8], typ: u8, at: usize) -> bool {
    if msg.first() != Some(&typ) {
        return true;
    }
    let Some(count) = msg.get(at..at + 4) else {
        return false;
    };
    let count = u32::from_le_bytes([count[0], count[1], count[2], count[3]]) as usize;
    msg.len() - (at + 4) >= count
}

/// One fid of a session.
struct Fid {
    handle: Handle,
    /// Open for I/O (`Tlopen`, `Tlcreate`).
    file: Option<File>,
    /// Directory entries read at offset 0, served from there on.
    entries: Option<Vec<Entry>>,
}

/// One client's view: its fids.
pub struct Session {
    export: Arc<Export>,
    fids: HashMap<u32, Fid>,
    msize: u32,
    /// The synthetic tree served under the attach name `proc`, if any.
    synth: Option<Arc<dyn Synthetic>>,
    sfids: SynthFids,
}

type Reply = Result<FCall, FsError>;

fn qid(st: &libc::stat) -> QId {
    let typ = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => QIdType::DIR,
        libc::S_IFLNK => QIdType::SYMLINK,
        _ => QIdType::FILE,
    };
    QId {
        typ,
        version: low_bits(st.st_mtime) ^ low_bits(st.st_mtime_nsec),
        path: qid_path(st),
    }
}

/// The low 32 bits of a time field: a qid version only has to change
/// when the file's time does.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a version is a hash of the time: its low bits"
)]
fn low_bits(v: i64) -> u32 {
    v as u32
}

/// A file's identity on the wire: its inode mixed with its device (an
/// export spans file systems: `/`, `/proc` and `/sys` all have an inode
/// 1), the top bit left clear (the synthetic tree's).
fn qid_path(st: &libc::stat) -> u64 {
    (st.st_ino
        ^ st.st_dev
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(32))
        & !(1 << 63)
}

fn stat_of(st: &libc::stat) -> Stat {
    let t = |sec: i64, nsec: i64| Time {
        sec: sec.cast_unsigned(),
        nsec: nsec.cast_unsigned(),
    };
    Stat {
        mode: st.st_mode,
        uid: st.st_uid,
        gid: st.st_gid,
        nlink: st.st_nlink,
        rdev: st.st_rdev,
        size: st.st_size.cast_unsigned(),
        blksize: st.st_blksize.cast_unsigned(),
        blocks: st.st_blocks.cast_unsigned(),
        atime: t(st.st_atime, st.st_atime_nsec),
        mtime: t(st.st_mtime, st.st_mtime_nsec),
        ctime: t(st.st_ctime, st.st_ctime_nsec),
    }
}

fn errno(e: Errno) -> FsError {
    FsError(e)
}

impl Session {
    pub fn new(export: Arc<Export>) -> Session {
        Session {
            export,
            fids: HashMap::new(),
            msize: 8192,
            synth: None,
            sfids: SynthFids::default(),
        }
    }

    /// A session that also serves `synth` under the attach name `proc`.
    pub fn with_synthetic(export: Arc<Export>, synth: Arc<dyn Synthetic>) -> Session {
        Session {
            synth: Some(synth),
            ..Session::new(export)
        }
    }

    fn fid(&self, fid: u32) -> Result<&Fid, FsError> {
        self.fids.get(&fid).ok_or(errno(Errno::EBADF))
    }

    fn fid_mut(&mut self, fid: u32) -> Result<&mut Fid, FsError> {
        self.fids.get_mut(&fid).ok_or(errno(Errno::EBADF))
    }

    /// `fid` may be given a file: not in use, and the session not full.
    fn fresh(&self, fid: u32) -> Result<(), FsError> {
        if self.fids.contains_key(&fid) || self.sfids.contains(fid) {
            return Err(errno(Errno::EBADF));
        }
        if self.fids.len() + self.sfids.len() >= MAX_FIDS {
            return Err(errno(Errno::EMFILE));
        }
        Ok(())
    }

    fn insert(&mut self, fid: u32, handle: Handle) {
        self.fids.insert(
            fid,
            Fid {
                handle,
                file: None,
                entries: None,
            },
        );
    }

    fn qid_of(&self, h: &Handle) -> Result<QId, FsError> {
        Ok(qid(&self.export.stat(h)?))
    }

    /// Answers one request.
    pub fn handle(&mut self, req: FCall) -> FCall {
        match self.answer(req) {
            Ok(r) => r,
            Err(FsError(e)) => FCall::RlError { ecode: e as u32 },
        }
    }

    /// Answers a request on the synthetic tree; gives any other back.
    #[allow(clippy::result_large_err)] // not an error: the request back
    fn synthetic(&mut self, req: FCall) -> Result<Reply, FCall> {
        let Some(tree) = self.synth.clone() else {
            return Err(req);
        };
        if let FCall::TAttach { fid, ref aname, .. } = req {
            if aname != crate::synth::ANAME {
                return Err(req);
            }
            return Ok(self
                .fresh(fid)
                .and_then(|()| self.sfids.attach(tree.as_ref(), fid)));
        }
        match crate::synth::fids_of(&req) {
            (Some(fid), newfid) if self.sfids.contains(fid) => {
                if let Some(newfid) = newfid.filter(|&n| n != fid)
                    && let Err(e) = self.fresh(newfid)
                {
                    return Ok(Err(e));
                }
                let iounit = self.msize - IOHDRSZ;
                Ok(self.sfids.answer(tree.as_ref(), req, iounit))
            }
            _ => Err(req),
        }
    }

    fn answer(&mut self, req: FCall) -> Reply {
        let req = match self.synthetic(req) {
            Ok(reply) => return reply,
            Err(req) => req,
        };
        let ex = self.export.clone();
        Ok(match req {
            FCall::TVersion { msize, version } => {
                self.fids.clear();
                self.sfids.clear();
                if msize < MIN_MSIZE {
                    return Err(errno(Errno::EINVAL));
                }
                self.msize = msize.min(MAX_MSIZE);
                let version = if version.starts_with(rs9p::P92000L) {
                    rs9p::P92000L.to_string()
                } else {
                    "unknown".to_string()
                };
                FCall::RVersion {
                    msize: self.msize,
                    version,
                }
            }
            FCall::TAuth { .. } => return Err(errno(Errno::ENOENT)),
            FCall::TAttach { fid, .. } => {
                self.fresh(fid)?;
                let root = ex.root()?;
                let qid = self.qid_of(&root)?;
                self.insert(fid, root);
                FCall::RAttach { qid }
            }
            FCall::TWalk {
                fid,
                newfid,
                wnames,
            } => {
                if newfid != fid {
                    self.fresh(newfid)?;
                }
                let mut h = ex.clone_handle(&self.fid(fid)?.handle)?;
                let mut wqids = Vec::new();
                for (i, name) in wnames.iter().enumerate() {
                    match ex.walk(&h, name) {
                        Ok(next) => {
                            wqids.push(self.qid_of(&next)?);
                            h = next;
                        }
                        Err(e) if i == 0 => return Err(e),
                        // A partial walk: the qids so far, no new fid.
                        Err(_) => return Ok(FCall::RWalk { wqids }),
                    }
                }
                self.insert(newfid, h);
                FCall::RWalk { wqids }
            }
            FCall::TGetAttr { fid, .. } => {
                let st = ex.stat(&self.fid(fid)?.handle)?;
                FCall::RGetAttr {
                    valid: GetAttrMask::BASIC,
                    qid: qid(&st),
                    stat: stat_of(&st),
                }
            }
            FCall::TSetAttr { fid, valid, stat } => {
                let h = &self.fid(fid)?.handle;
                if valid.contains(SetAttrMask::MODE) {
                    ex.chmod(h, stat.mode)?;
                }
                if valid.intersects(SetAttrMask::UID | SetAttrMask::GID) {
                    ex.chown(
                        h,
                        valid.contains(SetAttrMask::UID).then_some(stat.uid),
                        valid.contains(SetAttrMask::GID).then_some(stat.gid),
                    )?;
                }
                if valid.contains(SetAttrMask::SIZE) {
                    ex.truncate(h, stat.size)?;
                }
                let when = |set: bool, explicit: bool, t: Time| {
                    set.then_some(libc::timespec {
                        tv_sec: if explicit { t.sec.cast_signed() } else { 0 },
                        tv_nsec: if explicit {
                            t.nsec.cast_signed()
                        } else {
                            libc::UTIME_NOW
                        },
                    })
                };
                let atime = when(
                    valid.contains(SetAttrMask::ATIME),
                    valid.contains(SetAttrMask::ATIME_SET),
                    stat.atime,
                );
                let mtime = when(
                    valid.contains(SetAttrMask::MTIME),
                    valid.contains(SetAttrMask::MTIME_SET),
                    stat.mtime,
                );
                if atime.is_some() || mtime.is_some() {
                    ex.utimes(h, atime, mtime)?;
                }
                FCall::RSetAttr
            }
            FCall::TlOpen { fid, flags } => {
                let f = self.fid(fid)?;
                let st = ex.stat(&f.handle)?;
                let mut flags = OFlag::from_bits_truncate(flags.cast_signed());
                if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
                }
                let file = ex.open_file(&f.handle, flags)?;
                let iounit = self.msize - IOHDRSZ;
                let f = self.fid_mut(fid)?;
                f.file = Some(file);
                FCall::RlOpen {
                    qid: qid(&st),
                    iounit,
                }
            }
            FCall::TlCreate {
                fid,
                name,
                flags,
                mode,
                ..
            } => {
                let dir = &self.fid(fid)?.handle;
                let (h, file) = ex.create(
                    dir,
                    &name,
                    OFlag::from_bits_truncate(flags.cast_signed()),
                    mode,
                )?;
                let qid = self.qid_of(&h)?;
                // The fid now stands for the new file, open.
                self.fids.insert(
                    fid,
                    Fid {
                        handle: h,
                        file: Some(file),
                        entries: None,
                    },
                );
                FCall::RlCreate {
                    qid,
                    iounit: self.msize - IOHDRSZ,
                }
            }
            FCall::TRead { fid, offset, count } => {
                let max = self.msize - IOHDRSZ;
                let f = self.fid(fid)?;
                let file = f.file.as_ref().ok_or(errno(Errno::EBADF))?;
                let mut buf = vec![0u8; count.min(max) as usize];
                let n = file.read_at(&mut buf, offset)?;
                buf.truncate(n);
                FCall::RRead {
                    data: rs9p::Data(buf),
                }
            }
            FCall::TWrite { fid, offset, data } => {
                let f = self.fid(fid)?;
                let file = f.file.as_ref().ok_or(errno(Errno::EBADF))?;
                let n = file.write_at(&data.0, offset)?;
                FCall::RWrite {
                    count: u32::try_from(n).unwrap_or(u32::MAX),
                }
            }
            FCall::TReadDir { fid, offset, count } => {
                let count = count.min(self.msize - IOHDRSZ);
                let f = self.fid_mut(fid)?;
                if offset == 0 || f.entries.is_none() {
                    let mut all = vec![
                        Entry {
                            name: ".".into(),
                            ino: 0,
                            kind: libc::DT_DIR,
                        },
                        Entry {
                            name: "..".into(),
                            ino: 0,
                            kind: libc::DT_DIR,
                        },
                    ];
                    all.extend(ex.readdir(&f.handle)?);
                    f.entries = Some(all);
                }
                let entries = f.entries.as_deref().unwrap_or_default();
                let mut out = Vec::new();
                let mut size = 0u32;
                for (i, e) in entries
                    .iter()
                    .enumerate()
                    .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                {
                    // qid 13, offset 8, type 1, name 2 + len
                    let len =
                        u32::try_from(e.name.len()).map_or(u32::MAX, |n| n.saturating_add(24));
                    if size + len > count {
                        break;
                    }
                    size += len;
                    let typ = match e.kind {
                        libc::DT_DIR => QIdType::DIR,
                        libc::DT_LNK => QIdType::SYMLINK,
                        _ => QIdType::FILE,
                    };
                    out.push(DirEntry {
                        qid: QId {
                            typ,
                            version: 0,
                            path: e.ino,
                        },
                        offset: i as u64 + 1,
                        typ: e.kind,
                        name: e.name.clone(),
                    });
                }
                FCall::RReadDir {
                    data: DirEntryData::with(out),
                }
            }
            FCall::TMkDir {
                dfid, name, mode, ..
            } => {
                let h = ex.mkdir(&self.fid(dfid)?.handle, &name, mode)?;
                FCall::RMkDir {
                    qid: self.qid_of(&h)?,
                }
            }
            FCall::TSymlink {
                fid, name, symtgt, ..
            } => {
                let h = ex.symlink(&self.fid(fid)?.handle, &name, &symtgt)?;
                FCall::RSymlink {
                    qid: self.qid_of(&h)?,
                }
            }
            FCall::TReadLink { fid } => FCall::RReadLink {
                target: ex.readlink(&self.fid(fid)?.handle)?,
            },
            FCall::TUnlinkAt { dirfd, name, flags } => {
                ex.unlink(&self.fid(dirfd)?.handle, &name, flags & AT_REMOVEDIR != 0)?;
                FCall::RUnlinkAt
            }
            FCall::TRenameAt {
                olddirfid,
                oldname,
                newdirfid,
                newname,
            } => {
                ex.rename(
                    &self.fid(olddirfid)?.handle,
                    &oldname,
                    &self.fid(newdirfid)?.handle,
                    &newname,
                )?;
                FCall::RRenameAt
            }
            FCall::TRename { fid, dfid, name } => {
                let h = &self.fid(fid)?.handle;
                let parent = ex.walk(h, "..")?;
                if !ex.still_named(&parent, h.name(), h)? {
                    return Err(errno(Errno::ESTALE));
                }
                ex.rename(&parent, h.name(), &self.fid(dfid)?.handle, &name)?;
                FCall::RRename
            }
            FCall::TFSync { fid } => {
                if let Some(file) = &self.fid(fid)?.file {
                    file.sync_all()?;
                }
                FCall::RFSync
            }
            FCall::TStatFs { fid } => {
                let s = ex.statfs(&self.fid(fid)?.handle)?;
                FCall::RStatFs {
                    statfs: StatFs {
                        typ: 0x0102_1997,
                        bsize: u32::try_from(s.block_size()).unwrap_or(u32::MAX),
                        blocks: s.blocks(),
                        bfree: s.blocks_free(),
                        bavail: s.blocks_available(),
                        files: s.files(),
                        ffree: s.files_free(),
                        fsid: s.filesystem_id(),
                        namelen: u32::try_from(s.name_max()).unwrap_or(u32::MAX),
                    },
                }
            }
            FCall::TClunk { fid } => {
                self.fids.remove(&fid).ok_or(errno(Errno::EBADF))?;
                FCall::RClunk
            }
            FCall::TRemove { fid } => {
                // The fid is clunked whether or not the removal works.
                let f = self.fids.remove(&fid).ok_or(errno(Errno::EBADF))?;
                let st = ex.stat(&f.handle)?;
                let parent = ex.walk(&f.handle, "..")?;
                if !ex.still_named(&parent, f.handle.name(), &f.handle)? {
                    return Err(errno(Errno::ESTALE));
                }
                ex.unlink(
                    &parent,
                    f.handle.name(),
                    st.st_mode & libc::S_IFMT == libc::S_IFDIR,
                )?;
                FCall::RRemove
            }
            FCall::TFlush { .. } => FCall::RFlush,
            _ => return Err(errno(Errno::EOPNOTSUPP)),
        })
    }
}

/// Serves one connection of plain 9P (size-prefixed messages) until the
/// peer closes it.
pub fn serve(export: Arc<Export>, stream: impl Read + Write) -> std::io::Result<()> {
    serve_session(Session::new(export), stream)
}

/// Serves one connection of plain 9P with `session`.
pub fn serve_session(mut session: Session, mut stream: impl Read + Write) -> std::io::Result<()> {
    loop {
        let mut size = [0u8; 4];
        match stream.read_exact(&mut size) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let size = u32::from_le_bytes(size);
        if !(7..=MAX_MSIZE).contains(&size) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a 9P message of {size} bytes"),
            ));
        }
        let mut body = vec![0u8; size as usize - 4];
        stream.read_exact(&mut body)?;
        let out = session.answer_message(&body)?;
        let len = u32::try_from(out.len() + 4)
            .map_err(|_| std::io::Error::other("a 9P answer larger than 4 GiB"))?;
        stream.write_all(&len.to_le_bytes())?;
        stream.write_all(&out)?;
    }
}

impl Session {
    /// Answers one encoded message (without its size prefix) with one.
    pub fn answer_message(&mut self, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        let decoded = if data_fits(msg, TWRITE, 15) {
            rs9p::serialize::read_msg(&mut &msg[..]).ok()
        } else {
            None
        };
        let reply = match decoded.ok_or(()) {
            Ok(m) => Msg {
                tag: m.tag,
                body: self.handle(m.body),
            },
            // Undecodable (or a type we do not know): answer its tag.
            Err(_) => Msg {
                tag: u16::from_le_bytes([
                    msg.get(1).copied().unwrap_or(0),
                    msg.get(2).copied().unwrap_or(0),
                ]),
                body: FCall::RlError {
                    ecode: Errno::EOPNOTSUPP as u32,
                },
            },
        };
        let mut out = Vec::with_capacity(64);
        rs9p::serialize::write_msg(&mut out, &reply)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(name: &str) -> (std::path::PathBuf, Session) {
        let dir = std::env::temp_dir().join(format!("mosaic-9p-srv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a"), "a").unwrap();
        let export = Arc::new(Export::open(&dir, false).unwrap());
        let mut s = Session::new(export);
        s.handle(FCall::TVersion {
            msize: 8192,
            version: rs9p::P92000L.into(),
        });
        assert!(matches!(
            s.handle(FCall::TAttach {
                fid: 1,
                afid: rs9p::NOFID,
                uname: "root".into(),
                aname: String::new(),
                n_uname: 0
            }),
            FCall::RAttach { .. }
        ));
        (dir, s)
    }

    fn err(r: FCall) -> i32 {
        match r {
            FCall::RlError { ecode } => ecode.cast_signed(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn walk(s: &mut Session, fid: u32, newfid: u32, names: &[&str]) -> FCall {
        s.handle(FCall::TWalk {
            fid,
            newfid,
            wnames: names.iter().map(|n| n.to_string()).collect(),
        })
    }

    #[test]
    fn bad_requests_get_errors_not_damage() {
        let (dir, mut s) = session("bad");
        // A fid in use is not silently replaced; walking onto itself is fine.
        assert!(matches!(walk(&mut s, 1, 2, &["a"]), FCall::RWalk { .. }));
        assert_eq!(err(walk(&mut s, 1, 2, &[])), libc::EBADF);
        assert!(matches!(walk(&mut s, 2, 2, &[]), FCall::RWalk { .. }));
        // A forged write count is answered, without allocating it.
        let mut forged = vec![TWRITE, 7, 0];
        forged.extend_from_slice(&2u32.to_le_bytes());
        forged.extend_from_slice(&0u64.to_le_bytes());
        forged.extend_from_slice(&u32::MAX.to_le_bytes());
        forged.extend_from_slice(b"x");
        let answer = s.answer_message(&forged).unwrap();
        let msg = rs9p::serialize::read_msg(&mut answer.as_slice()).unwrap();
        assert_eq!(msg.tag, 7);
        assert_eq!(err(msg.body), libc::EOPNOTSUPP);
        // A FIFO is not opened (an open would block the serving thread).
        nix::unistd::mkfifo(
            &dir.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        assert!(matches!(walk(&mut s, 1, 3, &["fifo"]), FCall::RWalk { .. }));
        assert_eq!(
            err(s.handle(FCall::TlOpen {
                fid: 3,
                flags: libc::O_RDONLY as u32
            })),
            libc::EOPNOTSUPP
        );
        // A file renamed since its fid was walked is not removed by name.
        std::fs::rename(dir.join("a"), dir.join("b")).unwrap();
        std::fs::write(dir.join("a"), "new a").unwrap();
        assert_eq!(err(s.handle(FCall::TRemove { fid: 2 })), libc::ESTALE);
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "new a");
        // Too small a message size is refused.
        assert_eq!(
            err(s.handle(FCall::TVersion {
                msize: 100,
                version: rs9p::P92000L.into()
            })),
            libc::EINVAL
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
