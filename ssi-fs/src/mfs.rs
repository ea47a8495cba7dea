//! `/mfs`: every node's files and one process table, through FUSE.
//!
//! ```text
//! /mfs/<node>/...      the node's export (its `/` by default), over 9P
//! /mfs/here            -> the node this is mounted on
//! /mfs/home            -> the calling process's home node (a guest sees
//!                         the node it came from), answered per caller
//! /mfs/proc/ps         every node's managed processes, one table
//! /mfs/proc/<node>/    the node's synthetic `proc` (load, cpus, speed,
//!                      mem, ps, <pid>/{where,home,status,cmdline,cantmove,lock})
//! ```
//!
//! The kernel talks to [`Mfs`] (fuser, no libfuse); `Mfs` talks 9P2000.L to
//! each node's server through a [`Cluster`], which `mosaicd` implements
//! (membership, the cluster key, its guests). An inode stands for a path on
//! a node, not for a held fid: each request walks from the node's root in
//! the same round trip as its operation (a batch: walk, op, clunk), so the
//! server holds fids only for open files, a dead connection leaves no stale
//! fid behind, and a reconnect needs nothing but a new attach. Open files
//! hold their own fid on the connection they were opened on.
//!
//! Caching: attributes and names for [`TTL`]; file pages are kept across
//! opens while the file's mtime and size are unchanged (`FOPEN_KEEP_CACHE`),
//! never direct I/O for files (so `mmap` works); the synthetic `proc` is read
//! with direct I/O (its sizes are not known ahead). `readdirplus` asks
//! for up to [`DIR_CHUNK`] bytes of entries, then their attributes in
//! batches (85 entries a round trip).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
};
use rs9p::{FCall, GetAttrMask, QId, SetAttrMask, Stat, Time};

use crate::client::{Client, ClientError, Transport};

/// Bytes of directory entries one `readdirplus` asks for (about 2,000
/// names; their attributes then take 6,000 requests in 24 batches).
const DIR_CHUNK: u32 = 64 << 10;
/// How long the kernel may trust a name or an attribute.
pub const TTL: Duration = Duration::from_secs(1);
/// The 9P message size `/mfs` asks for: a 1 MiB FUSE read is one 9P read.
pub const MSIZE: u32 = crate::server::MAX_MSIZE;

/// What `/mfs` needs from its node's daemon.
pub trait Cluster: Send + Sync + 'static {
    /// This node's name.
    fn here(&self) -> String;
    /// The live nodes, this one included.
    fn nodes(&self) -> Vec<String>;
    /// The home node of process `pid` (as the kernel names it to this
    /// mount), when it is a guest here or a child of one.
    fn home_of(&self, pid: u32) -> Option<String>;
    /// A fresh 9P transport to `node`'s server.
    fn connect(&self, node: &str) -> std::io::Result<Box<dyn Transport + Send>>;
}

/// Counters for `mosaic mfs status`.
#[derive(Debug, Default)]
pub struct Stats {
    pub read_bytes: AtomicU64,
    pub written_bytes: AtomicU64,
    /// 9P round trips.
    pub round_trips: AtomicU64,
    /// Connections made (a reconnect counts again).
    pub connects: AtomicU64,
    /// Requests that failed for the transport (a node unreachable).
    pub transport_errors: AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Tree {
    Files,
    Proc,
}

const ROOT: u64 = 1;
const HERE: u64 = 2;
const HOME: u64 = 3;
const PROC: u64 = 4;
const PS: u64 = 5;
const FIRST_DYNAMIC: u64 = 16;

/// A path on one node's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Remote {
    node: String,
    tree: Tree,
    path: Vec<String>,
}

impl Remote {
    fn child(&self, name: &str) -> Remote {
        let mut path = self.path.clone();
        path.push(name.to_string());
        Remote {
            node: self.node.clone(),
            tree: self.tree,
            path,
        }
    }
}

struct Inode {
    remote: Remote,
    qid_path: u64,
    lookups: u64,
    /// (mtime, size) when its pages were last cached.
    cached_as: Option<(u64, u64)>,
}

#[derive(Default)]
struct Tables {
    inodes: HashMap<u64, Inode>,
    by_qid: HashMap<(String, Tree, u64), u64>,
    next: u64,
}

/// The fids of one batch: the tree's root, the walked one, a spare.
#[derive(Clone, Copy)]
struct Walked {
    root: u32,
    fid: u32,
    spare: u32,
}

/// One node's connection: a client and its attached root fid.
struct Conn {
    client: Client<Box<dyn Transport + Send>>,
    root: u32,
    /// Fids of closed files, clunked at the head of the next batch (a
    /// close then costs no round trip of its own).
    clunks: Vec<u32>,
}

impl Conn {
    /// The deferred clunks, as requests (taken: sent once).
    fn take_clunks(&mut self) -> Vec<FCall> {
        self.clunks
            .drain(..)
            .map(|fid| FCall::TClunk { fid })
            .collect()
    }
}

/// Closed fids kept for the next batch, at most.
const MAX_DEFERRED_CLUNKS: usize = 64;

type Shared<T> = Arc<Mutex<T>>;
type Answer = Result<FCall, ClientError>;
/// The answers of a batch's operations, its connection and walked fid.
type OnPath = (Vec<Answer>, Shared<Conn>, u32);
/// Directory entries with their attributes (none: gone since listed).
type Listed = Vec<(crate::client::DirEntry, Option<(QId, Stat)>)>;

enum Handle {
    /// An open fid on the connection it was opened on.
    Remote { conn: Shared<Conn>, fid: u32 },
    /// Bytes made at open (the merged table).
    Bytes(Vec<u8>),
    /// `/mfs` or `/mfs/proc`.
    Listing,
}

/// The filesystem behind `/mfs`.
pub struct Mfs<C> {
    cluster: C,
    tables: Mutex<Tables>,
    conns: Mutex<HashMap<(String, Tree), Shared<Conn>>>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    /// Per open directory: entries a `readdirplus` fetched that did not
    /// fit its reply, the offset they go on from, and whether they are
    /// the directory's last.
    ahead: Mutex<HashMap<u64, (u64, Listed, bool)>>,
    next_fh: AtomicU64,
    stats: Arc<Stats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn errno_of(e: &ClientError) -> Errno {
    match e {
        ClientError::Errno(e) => Errno::from_i32(*e as i32),
        ClientError::Io(_) | ClientError::Protocol(_) => Errno::EIO,
    }
}

/// A 9P time (seconds as the server's signed `time_t`, sent unsigned).
fn time_of(t: Time) -> SystemTime {
    let secs = t.sec.cast_signed();
    let nanos = Duration::from_nanos(t.nsec.min(999_999_999));
    let at = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.cast_unsigned()) + nanos)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .and_then(|t| t.checked_add(nanos))
    };
    at.unwrap_or(UNIX_EPOCH)
}

fn kind_of(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        libc::S_IFSOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn attr_of(ino: u64, st: &Stat) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: st.size,
        blocks: st.blocks,
        atime: time_of(st.atime),
        mtime: time_of(st.mtime),
        ctime: time_of(st.ctime),
        crtime: UNIX_EPOCH,
        kind: kind_of(st.mode),
        perm: (st.mode & 0o7777) as u16,
        nlink: u32::try_from(st.nlink).unwrap_or(u32::MAX),
        uid: st.uid,
        gid: st.gid,
        rdev: u32::try_from(st.rdev).unwrap_or(u32::MAX),
        blksize: st.blksize.clamp(512, 1 << 20) as u32,
        flags: 0,
    }
}

/// Attributes of `/mfs`'s own entries.
fn own_attr(ino: u64, kind: FileType, size: u64) -> FileAttr {
    let now = SystemTime::now();
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: 0,
        atime: now,
        mtime: now,
        ctime: now,
        crtime: UNIX_EPOCH,
        kind,
        perm: if kind == FileType::Directory {
            0o555
        } else if kind == FileType::Symlink {
            0o777
        } else {
            0o444
        },
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn mtime_ns(st: &Stat) -> u64 {
    st.mtime.sec.wrapping_mul(1_000_000_000) + st.mtime.nsec
}

/// The request that walks `path` from `from` onto `fid` (a clone of
/// `from` for an empty path). One `Twalk` whatever the depth: our servers
/// take any number of names, and a walk that stops short makes no fid, so
/// the operations after it in a batch fail (EBADF) instead of acting on an
/// ancestor, as a walk in several steps onto one fid would.
fn walk_req(from: u32, fid: u32, path: &[String]) -> FCall {
    FCall::TWalk {
        fid: from,
        newfid: fid,
        wnames: path.to_vec(),
    }
}

/// Whether the answer to [`walk_req`] reached the end of the path.
fn walked(answer: &Answer, path: &[String]) -> Result<(), Errno> {
    match answer {
        Ok(FCall::RWalk { wqids }) if wqids.len() == path.len() => Ok(()),
        Ok(_) => Err(Errno::ENOENT),
        Err(e) => Err(errno_of(e)),
    }
}

/// A process's tgid and parent, from `/proc/PID/status`.
fn tgid_and_parent(pid: u32) -> Option<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("Tgid:")?, field("PPid:")?))
}

impl<C: Cluster> Mfs<C> {
    pub fn new(cluster: C) -> Mfs<C> {
        Mfs {
            cluster,
            tables: Mutex::new(Tables {
                next: FIRST_DYNAMIC,
                ..Tables::default()
            }),
            conns: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            ahead: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            stats: Arc::new(Stats::default()),
        }
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The home node of the process behind a request: a guest's (or its
    /// descendant's) home, else here.
    fn home_of_caller(&self, pid: u32) -> String {
        let mut pid = pid;
        for _ in 0..64 {
            if pid <= 1 {
                break;
            }
            if let Some(home) = self.cluster.home_of(pid) {
                return home;
            }
            let Some((tgid, parent)) = tgid_and_parent(pid) else {
                break;
            };
            if tgid != pid {
                pid = tgid;
                continue;
            }
            pid = parent;
        }
        self.cluster.here()
    }

    fn conn(&self, node: &str, tree: Tree) -> Result<Shared<Conn>, Errno> {
        let key = (node.to_string(), tree);
        {
            let mut conns = lock(&self.conns);
            if let Some(c) = conns.get(&key) {
                // A connection that failed (a timeout, a peer gone) is
                // never asked again: its open files fail with EIO, and a
                // new one serves everything else.
                if !lock(c).client.is_broken() {
                    return Ok(c.clone());
                }
                conns.remove(&key);
            }
        }
        let transport = self.cluster.connect(node).map_err(|e| {
            tracing::warn!(%node, error = %e, "/mfs: cannot reach the node's files");
            self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
            Errno::EHOSTUNREACH
        })?;
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        let mut client = Client::new(transport, MSIZE).map_err(|e| errno_of(&e))?;
        let aname = match tree {
            Tree::Files => "",
            Tree::Proc => crate::synth::ANAME,
        };
        let root = client.attach_to("root", aname).map_err(|e| errno_of(&e))?;
        let conn = Arc::new(Mutex::new(Conn {
            client,
            root,
            clunks: Vec::new(),
        }));
        // Two threads may have connected at once: keep the first.
        Ok(lock(&self.conns).entry(key).or_insert(conn).clone())
    }

    /// Forgets a connection that failed, so that the next request makes a
    /// new one.
    fn drop_conn(&self, node: &str, tree: Tree, conn: &Shared<Conn>) {
        let mut conns = lock(&self.conns);
        if conns
            .get(&(node.to_string(), tree))
            .is_some_and(|c| Arc::ptr_eq(c, conn))
        {
            conns.remove(&(node.to_string(), tree));
        }
    }

    /// Sends `reqs` on `conn` as one batch.
    fn batch(
        &self,
        r: &Remote,
        conn: &Shared<Conn>,
        reqs: Vec<FCall>,
    ) -> Result<Vec<Result<FCall, ClientError>>, Errno> {
        self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
        let answers = {
            let mut c = lock(conn);
            let clunks = c.take_clunks();
            let n = clunks.len();
            c.client
                .batch(clunks.into_iter().chain(reqs).collect())
                .map(|mut a| a.split_off(n))
        };
        answers.map_err(|e| {
            tracing::warn!(node = %r.node, error = %e, "/mfs: a node's connection failed");
            self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
            self.drop_conn(&r.node, r.tree, conn);
            errno_of(&e)
        })
    }

    /// Walks to `r` and runs `ops` on the walked fid in one round trip;
    /// the fid is clunked after unless `keep`. Returns the answers of
    /// `ops`, the connection and the fid.
    fn on_path(
        &self,
        r: &Remote,
        keep: bool,
        ops: impl FnOnce(u32) -> Vec<FCall>,
    ) -> Result<OnPath, Errno> {
        self.on_path_with(r, keep, |w| ops(w.fid))
    }

    /// [`Self::on_path`], where `ops` also gets the root and a spare fid.
    fn on_path_with(
        &self,
        r: &Remote,
        keep: bool,
        ops: impl FnOnce(Walked) -> Vec<FCall>,
    ) -> Result<OnPath, Errno> {
        let conn = self.conn(&r.node, r.tree)?;
        let w = {
            let mut c = lock(&conn);
            Walked {
                root: c.root,
                fid: c.client.fresh_fid(),
                spare: c.client.fresh_fid(),
            }
        };
        let fid = w.fid;
        let mut reqs = vec![walk_req(w.root, fid, &r.path)];
        let ops = ops(w);
        let n_ops = ops.len();
        reqs.extend(ops);
        if !keep {
            reqs.push(FCall::TClunk { fid });
        }
        let mut answers = self.batch(r, &conn, reqs)?;
        walked(&answers[0], &r.path)?;
        if keep && answers.get(1).is_some_and(|a| a.is_err()) {
            // The first operation (an open, a create) failed: the fid is
            // not kept. (Later ones are the caller's: see `Self::drop_fid`.)
            self.drop_fid(&conn, fid);
        }
        answers.truncate(1 + n_ops);
        Ok((answers.split_off(1), conn, fid))
    }

    /// Clunks `fid` with the next batch on `conn`.
    fn drop_fid(&self, conn: &Shared<Conn>, fid: u32) {
        let mut c = lock(conn);
        c.clunks.push(fid);
        if c.clunks.len() >= MAX_DEFERRED_CLUNKS {
            let clunks = c.take_clunks();
            let _ = c.client.batch(clunks);
        }
    }

    fn remote(&self, ino: u64) -> Result<Remote, Errno> {
        if ino < FIRST_DYNAMIC {
            // `/mfs`, `/mfs/proc` and their own entries cannot be changed.
            return Err(Errno::EROFS);
        }
        lock(&self.tables)
            .inodes
            .get(&ino)
            .map(|i| i.remote.clone())
            .ok_or(Errno::ESTALE)
    }

    /// The inode of `r` (whose file has `qid`), counted as looked up once
    /// more when `count`.
    fn intern(&self, r: &Remote, qid: &QId, count: bool) -> u64 {
        let mut t = lock(&self.tables);
        let key = (r.node.clone(), r.tree, qid.path);
        if let Some(&ino) = t.by_qid.get(&key)
            && let Some(inode) = t.inodes.get_mut(&ino)
        {
            inode.remote = r.clone();
            inode.lookups += u64::from(count);
            return ino;
        }
        let ino = t.next;
        t.next += 1;
        t.by_qid.insert(key, ino);
        t.inodes.insert(
            ino,
            Inode {
                remote: r.clone(),
                qid_path: qid.path,
                lookups: u64::from(count),
                cached_as: None,
            },
        );
        ino
    }

    fn getattr_req(fid: u32) -> FCall {
        FCall::TGetAttr {
            fid,
            req_mask: GetAttrMask::ALL,
        }
    }

    fn attr_answer(a: &Result<FCall, ClientError>) -> Result<(QId, Stat), Errno> {
        match a {
            Ok(FCall::RGetAttr { qid, stat, .. }) => Ok((*qid, *stat)),
            Ok(_) => Err(Errno::EIO),
            Err(e) => Err(errno_of(e)),
        }
    }

    fn ok(a: &Result<FCall, ClientError>) -> Result<(), Errno> {
        a.as_ref().map(|_| ()).map_err(errno_of)
    }

    fn ttl(r: &Remote) -> Duration {
        match r.tree {
            Tree::Files => TTL,
            Tree::Proc => Duration::ZERO,
        }
    }

    /// Looks `r` up: its inode (counted) and attributes.
    fn lookup_remote(&self, r: &Remote) -> Result<FileAttr, Errno> {
        let (answers, _, _) = self.on_path(r, false, |fid| vec![Self::getattr_req(fid)])?;
        let (qid, stat) = Self::attr_answer(&answers[0])?;
        let ino = self.intern(r, &qid, true);
        Ok(attr_of(ino, &stat))
    }

    /// `(uid, gid)` to give a new file made for `req` (the server makes
    /// it as root).
    fn owner_reqs(req: &Request, fid: u32) -> Option<FCall> {
        (req.uid() != 0).then(|| FCall::TSetAttr {
            fid,
            valid: SetAttrMask::UID | SetAttrMask::GID,
            stat: rs9p::SetAttr {
                mode: 0,
                uid: req.uid(),
                gid: req.gid(),
                size: 0,
                atime: Time { sec: 0, nsec: 0 },
                mtime: Time { sec: 0, nsec: 0 },
            },
        })
    }

    /// Makes `name` in directory `parent` with `make` (on the directory's
    /// fid), then gives the caller the new entry.
    fn make(
        &self,
        req: &Request,
        parent: u64,
        name: &OsStr,
        make: impl FnOnce(u32, &str) -> FCall,
    ) -> Result<FileAttr, Errno> {
        let dir = self.remote(parent)?;
        let name = name.to_str().ok_or(Errno::EINVAL)?;
        let child = dir.child(name);
        let (answers, _, _) = self.on_path_with(&dir, false, |w| {
            let (fid, tmp) = (w.fid, w.spare);
            let mut v = vec![make(fid, name), walk_req(fid, tmp, &[name.to_string()])];
            v.extend(Self::owner_reqs(req, tmp));
            v.push(Self::getattr_req(tmp));
            v.push(FCall::TClunk { fid: tmp });
            v
        })?;
        Self::ok(&answers[0])?;
        let (qid, stat) = Self::attr_answer(&answers[answers.len() - 2])?;
        Ok(attr_of(self.intern(&child, &qid, true), &stat))
    }

    fn new_handle(&self, h: Handle) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, Arc::new(h));
        FileHandle(fh)
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<Handle>, Errno> {
        lock(&self.handles).get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    /// The entries of `/mfs` or `/mfs/proc`: (ino, kind, name); node
    /// entries have no inode yet (0).
    fn listing(&self, ino: u64) -> Vec<(u64, FileType, String)> {
        let mut v = vec![
            (ino, FileType::Directory, ".".to_string()),
            (ROOT, FileType::Directory, "..".to_string()),
        ];
        if ino == ROOT {
            v.push((HERE, FileType::Symlink, "here".into()));
            v.push((HOME, FileType::Symlink, "home".into()));
            v.push((PROC, FileType::Directory, "proc".into()));
        } else {
            v.push((PS, FileType::RegularFile, "ps".into()));
        }
        for node in self.cluster.nodes() {
            if !matches!(node.as_str(), "here" | "home" | "proc" | "ps") {
                v.push((0, FileType::Directory, node));
            }
        }
        v
    }

    /// [`Self::listing`] from `offset` on, each entry with the offset of
    /// the one after it.
    fn listing_from(
        &self,
        ino: u64,
        offset: u64,
    ) -> impl Iterator<Item = (u64, u64, FileType, String)> {
        self.listing(ino)
            .into_iter()
            .zip(1u64..)
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .map(|((ino, kind, name), next)| (next, ino, kind, name))
    }

    fn tree_of(ino: u64) -> Tree {
        if ino == PROC { Tree::Proc } else { Tree::Files }
    }

    /// The merged process table: every node's `ps`, one header.
    fn merged_ps(&self) -> Vec<u8> {
        let mut out = String::new();
        for node in self.cluster.nodes() {
            let r = Remote {
                node: node.clone(),
                tree: Tree::Proc,
                path: vec!["ps".into()],
            };
            let Ok((answers, _, _)) = self.on_path(&r, false, |fid| {
                vec![
                    FCall::TlOpen {
                        fid,
                        flags: libc::O_RDONLY as u32,
                    },
                    FCall::TRead {
                        fid,
                        offset: 0,
                        count: MSIZE,
                    },
                ]
            }) else {
                continue;
            };
            let Some(Ok(FCall::RRead { data })) = answers.get(1) else {
                continue;
            };
            let text = String::from_utf8_lossy(&data.0);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            if out.is_empty() {
                out.push_str(header);
                out.push('\n');
            }
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
        }
        out.into_bytes()
    }

    fn own_getattr(&self, req: &Request, ino: u64) -> Option<FileAttr> {
        Some(match ino {
            ROOT | PROC => own_attr(ino, FileType::Directory, 0),
            HERE => own_attr(ino, FileType::Symlink, self.cluster.here().len() as u64),
            HOME => own_attr(
                ino,
                FileType::Symlink,
                self.home_of_caller(req.pid()).len() as u64,
            ),
            PS => own_attr(ino, FileType::RegularFile, 0),
            _ => return None,
        })
    }

    /// Renames the paths of known inodes under `from` to under `to`.
    fn moved(&self, from: &Remote, to: &Remote) {
        let mut t = lock(&self.tables);
        for inode in t.inodes.values_mut() {
            let r = &mut inode.remote;
            if r.node == from.node && r.tree == from.tree && r.path.starts_with(&from.path) {
                let rest = r.path.split_off(from.path.len());
                r.path = to.path.clone();
                r.path.extend(rest);
            }
        }
    }

    /// The entries of an open directory from `offset`, each with its
    /// attributes (walk, getattr, clunk of every entry in one batch).
    /// Also says whether these are the last: our servers fill a reply
    /// with as many entries as fit, so room left for the longest name
    /// means none is left.
    fn fetch_with_attrs(
        &self,
        h: &Handle,
        dir: &Remote,
        offset: u64,
    ) -> Result<(Listed, bool), Errno> {
        let (entries, conn, dfid) = self.readdir_remote(h, offset, DIR_CHUNK)?;
        let used = entries.iter().map(|e| 24 + e.name.len()).sum::<usize>();
        let last = used + 24 + 255 <= DIR_CHUNK as usize;
        let tmp = lock(&conn).client.fresh_fid();
        let mut reqs = Vec::new();
        for e in &entries {
            let dots = e.name == "." || e.name == "..";
            let path = if dots {
                &[][..]
            } else {
                std::slice::from_ref(&e.name)
            };
            reqs.push(walk_req(dfid, tmp, path));
            reqs.push(Self::getattr_req(tmp));
            reqs.push(FCall::TClunk { fid: tmp });
        }
        let answers = self.batch(dir, &conn, reqs)?;
        let listed = entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e, Self::attr_answer(&answers[3 * i + 1]).ok()))
            .collect();
        Ok((listed, last))
    }

    fn readdir_remote(
        &self,
        h: &Handle,
        offset: u64,
        count: u32,
    ) -> Result<(Vec<crate::client::DirEntry>, Shared<Conn>, u32), Errno> {
        let Handle::Remote { conn, fid } = h else {
            return Err(Errno::EBADF);
        };
        self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
        let entries = lock(conn).client.readdir_up_to(*fid, offset, count);
        Ok((entries.map_err(|e| errno_of(&e))?, conn.clone(), *fid))
    }
}

impl<C: Cluster> Filesystem for Mfs<C> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_DO_READDIRPLUS);
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_READDIRPLUS_AUTO);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str() else {
            return reply.error(Errno::ENOENT);
        };
        let parent = parent.0;
        let fixed = match (parent, name) {
            (ROOT, "here") => Some((HERE, FileType::Symlink)),
            (ROOT, "home") => Some((HOME, FileType::Symlink)),
            (ROOT, "proc") => Some((PROC, FileType::Directory)),
            (PROC, "ps") => Some((PS, FileType::RegularFile)),
            _ => None,
        };
        if let Some((ino, kind)) = fixed {
            // Per caller (home) or per open (ps): nothing to cache.
            return reply.entry(&Duration::ZERO, &own_attr(ino, kind, 0), Generation(0));
        }
        let r = if parent == ROOT || parent == PROC {
            if !self.cluster.nodes().iter().any(|n| n == name) {
                return reply.error(Errno::ENOENT);
            }
            Remote {
                node: name.to_string(),
                tree: Self::tree_of(parent),
                path: Vec::new(),
            }
        } else {
            match self.remote(parent) {
                Ok(dir) => dir.child(name),
                Err(e) => return reply.error(e),
            }
        };
        match self.lookup_remote(&r) {
            Ok(attr) => reply.entry(&Self::ttl(&r), &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let mut t = lock(&self.tables);
        let Some(inode) = t.inodes.get_mut(&ino.0) else {
            return;
        };
        inode.lookups = inode.lookups.saturating_sub(nlookup);
        if inode.lookups == 0
            && let Some(inode) = t.inodes.remove(&ino.0)
        {
            let key = (inode.remote.node, inode.remote.tree, inode.qid_path);
            if t.by_qid.get(&key) == Some(&ino.0) {
                t.by_qid.remove(&key);
            }
        }
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if let Some(attr) = self.own_getattr(req, ino.0) {
            return reply.attr(&Duration::ZERO, &attr);
        }
        let got = self.remote(ino.0).and_then(|r| {
            let (answers, _, _) = self.on_path(&r, false, |fid| vec![Self::getattr_req(fid)])?;
            Ok((Self::attr_answer(&answers[0])?.1, Self::ttl(&r)))
        });
        match got {
            Ok((stat, ttl)) => reply.attr(&ttl, &attr_of(ino.0, &stat)),
            Err(e) => reply.error(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut valid = SetAttrMask::empty();
        let zero = Time { sec: 0, nsec: 0 };
        let mut set = rs9p::SetAttr {
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            atime: zero,
            mtime: zero,
        };
        if let Some(m) = mode {
            valid |= SetAttrMask::MODE;
            set.mode = m;
        }
        if let Some(u) = uid {
            valid |= SetAttrMask::UID;
            set.uid = u;
        }
        if let Some(g) = gid {
            valid |= SetAttrMask::GID;
            set.gid = g;
        }
        if let Some(s) = size {
            valid |= SetAttrMask::SIZE;
            set.size = s;
        }
        let time = |t: fuser::TimeOrNow, at: &mut Time| -> bool {
            match t {
                fuser::TimeOrNow::Now => false,
                fuser::TimeOrNow::SpecificTime(t) => {
                    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                    *at = Time {
                        sec: d.as_secs(),
                        nsec: u64::from(d.subsec_nanos()),
                    };
                    true
                }
            }
        };
        if let Some(t) = atime {
            valid |= SetAttrMask::ATIME;
            if time(t, &mut set.atime) {
                valid |= SetAttrMask::ATIME_SET;
            }
        }
        if let Some(t) = mtime {
            valid |= SetAttrMask::MTIME;
            if time(t, &mut set.mtime) {
                valid |= SetAttrMask::MTIME_SET;
            }
        }
        let got = self.remote(ino.0).and_then(|r| {
            let (answers, _, _) = self.on_path(&r, false, |fid| {
                vec![
                    FCall::TSetAttr {
                        fid,
                        valid,
                        stat: set,
                    },
                    Self::getattr_req(fid),
                ]
            })?;
            Self::ok(&answers[0])?;
            Ok((Self::attr_answer(&answers[1])?.1, Self::ttl(&r)))
        });
        match got {
            Ok((stat, ttl)) => reply.attr(&ttl, &attr_of(ino.0, &stat)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        match ino.0 {
            HERE => return reply.data(self.cluster.here().as_bytes()),
            HOME => return reply.data(self.home_of_caller(req.pid()).as_bytes()),
            _ => {}
        }
        let got = self.remote(ino.0).and_then(|r| {
            let (answers, _, _) = self.on_path(&r, false, |fid| vec![FCall::TReadLink { fid }])?;
            match &answers[0] {
                Ok(FCall::RReadLink { target }) => Ok(target.clone()),
                Ok(_) => Err(Errno::EIO),
                Err(e) => Err(errno_of(e)),
            }
        });
        match got {
            Ok(target) => reply.data(target.as_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let gid = req.gid();
        match self.make(req, parent.0, name, |dfid, name| FCall::TMkDir {
            dfid,
            name: name.into(),
            mode: mode & !umask,
            gid,
        }) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let Some(target) = target.to_str() else {
            return reply.error(Errno::EINVAL);
        };
        let gid = req.gid();
        match self.make(req, parent.0, link_name, |fid, name| FCall::TSymlink {
            fid,
            name: name.into(),
            symtgt: target.into(),
            gid,
        }) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(self.remove(parent.0, name, 0), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(
            self.remove(parent.0, name, libc::AT_REMOVEDIR as u32),
            reply,
        );
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let done = (|| {
            if !flags.is_empty() {
                return Err(Errno::EINVAL);
            }
            let (from_dir, to_dir) = (self.remote(parent.0)?, self.remote(newparent.0)?);
            if from_dir.node != to_dir.node || from_dir.tree != to_dir.tree {
                return Err(Errno::EXDEV);
            }
            let (name, newname) = (
                name.to_str().ok_or(Errno::EINVAL)?,
                newname.to_str().ok_or(Errno::EINVAL)?,
            );
            let (answers, _, _) = self.on_path_with(&from_dir, false, |w| {
                // The second directory, walked in the same batch.
                vec![
                    walk_req(w.root, w.spare, &to_dir.path),
                    FCall::TRenameAt {
                        olddirfid: w.fid,
                        oldname: name.into(),
                        newdirfid: w.spare,
                        newname: newname.into(),
                    },
                    FCall::TClunk { fid: w.spare },
                ]
            })?;
            walked(&answers[0], &to_dir.path)?;
            Self::ok(&answers[1])?;
            self.moved(&from_dir.child(name), &to_dir.child(newname));
            Ok(())
        })();
        reply_empty(done, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if ino.0 == PS {
            let fh = self.new_handle(Handle::Bytes(self.merged_ps()));
            return reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO);
        }
        let acc = flags.0 & (libc::O_ACCMODE | libc::O_APPEND);
        let got = self.remote(ino.0).and_then(|r| {
            let (answers, conn, fid) = self.on_path(&r, true, |fid| {
                vec![
                    FCall::TlOpen {
                        fid,
                        flags: acc.cast_unsigned(),
                    },
                    Self::getattr_req(fid),
                ]
            })?;
            Self::ok(&answers[0])?;
            let stat = match Self::attr_answer(&answers[1]) {
                Ok((_, stat)) => stat,
                Err(e) => {
                    self.drop_fid(&conn, fid);
                    return Err(e);
                }
            };
            Ok((r.tree, stat, conn, fid))
        });
        match got {
            Ok((Tree::Proc, _, conn, fid)) => {
                let fh = self.new_handle(Handle::Remote { conn, fid });
                reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO);
            }
            Ok((Tree::Files, stat, conn, fid)) => {
                // Pages cached for this very content are still good.
                let now = (mtime_ns(&stat), stat.size);
                let keep = {
                    let mut t = lock(&self.tables);
                    t.inodes
                        .get_mut(&ino.0)
                        .map(|i| i.cached_as.replace(now) == Some(now))
                        .unwrap_or(false)
                };
                let fh = self.new_handle(Handle::Remote { conn, fid });
                let flags = if keep {
                    FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    FopenFlags::empty()
                };
                reply.opened(fh, flags);
            }
            Err(e) => reply.error(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        match &*h {
            Handle::Bytes(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let end = start.saturating_add(size as usize).min(b.len());
                reply.data(&b[start..end]);
            }
            Handle::Remote { conn, fid } => {
                let mut out: Vec<u8> = Vec::new();
                let mut c = lock(conn);
                while out.len() < size as usize {
                    self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
                    let want = size - u32::try_from(out.len()).unwrap_or(size);
                    match c.client.read(*fid, offset + out.len() as u64, want) {
                        Ok(chunk) if chunk.is_empty() => break,
                        Ok(chunk) if out.is_empty() && chunk.len() == size as usize => {
                            out = chunk;
                        }
                        Ok(chunk) => out.extend_from_slice(&chunk),
                        Err(e) if out.is_empty() => return reply.error(errno_of(&e)),
                        Err(_) => break,
                    }
                }
                out.truncate(size as usize);
                self.stats
                    .read_bytes
                    .fetch_add(out.len() as u64, Ordering::Relaxed);
                reply.data(&out);
            }
            Handle::Listing => reply.error(Errno::EISDIR),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let Handle::Remote { conn, fid } = &*h else {
            return reply.error(Errno::EBADF);
        };
        let mut done = 0usize;
        let mut c = lock(conn);
        while done < data.len() {
            self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
            match c.client.write(*fid, offset + done as u64, &data[done..]) {
                Ok(0) if done == 0 => return reply.error(Errno::EIO),
                Ok(0) => break,
                Ok(n) => done += n as usize,
                Err(e) if done == 0 => return reply.error(errno_of(&e)),
                Err(_) => break,
            }
        }
        self.stats
            .written_bytes
            .fetch_add(done as u64, Ordering::Relaxed);
        reply.written(u32::try_from(done).unwrap_or(u32::MAX));
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.close(fh);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let done = self.handle(fh).and_then(|h| match &*h {
            Handle::Remote { conn, fid } => lock(conn)
                .client
                .call(FCall::TFSync { fid: *fid })
                .map(|_| ())
                .map_err(|e| errno_of(&e)),
            _ => Ok(()),
        });
        reply_empty(done, reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino.0 == ROOT || ino.0 == PROC {
            return reply.opened(self.new_handle(Handle::Listing), FopenFlags::empty());
        }
        let got = self.remote(ino.0).and_then(|r| {
            let (answers, conn, fid) = self.on_path(&r, true, |fid| {
                vec![FCall::TlOpen {
                    fid,
                    flags: (libc::O_RDONLY | libc::O_DIRECTORY) as u32,
                }]
            })?;
            Self::ok(&answers[0])?;
            Ok((conn, fid))
        });
        match got {
            Ok((conn, fid)) => reply.opened(
                self.new_handle(Handle::Remote { conn, fid }),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        if let Handle::Listing = &*h {
            for (next, ino, kind, name) in self.listing_from(ino.0, offset) {
                // Node roots get their inode at lookup; any number will do
                // for a plain listing.
                let ino = if ino == 0 { u64::MAX - next } else { ino };
                if reply.add(INodeNo(ino), next, kind, &name) {
                    break;
                }
            }
            return reply.ok();
        }
        match self.readdir_remote(&h, offset, MSIZE) {
            Ok((entries, _, _)) => {
                for e in entries {
                    let kind = kind_of(u32::from(e.kind) << 12);
                    let ino = if e.ino == 0 { u64::MAX } else { e.ino };
                    if reply.add(INodeNo(ino), e.offset, kind, &e.name) {
                        break;
                    }
                }
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        if let Handle::Listing = &*h {
            let tree = Self::tree_of(ino.0);
            for (next, eino, kind, name) in self.listing_from(ino.0, offset) {
                let (attr, ttl, counted) = if eino != 0 {
                    let attr = self
                        .own_getattr(req, eino)
                        .unwrap_or_else(|| own_attr(eino, kind, 0));
                    (attr, Duration::ZERO, false)
                } else {
                    let r = Remote {
                        node: name.clone(),
                        tree,
                        path: Vec::new(),
                    };
                    // A node that does not answer is left out.
                    let Ok(attr) = self.lookup_remote(&r) else {
                        continue;
                    };
                    (attr, Self::ttl(&r), true)
                };
                if reply.add(attr.ino, next, &name, &ttl, &attr, Generation(0)) {
                    if counted {
                        self.forget(req, attr.ino, 1);
                    }
                    break;
                }
            }
            return reply.ok();
        }
        let dir = match self.remote(ino.0) {
            Ok(r) => r,
            Err(e) => return reply.error(e),
        };
        // What the last call fetched and did not fit, if it goes on from
        // here; else this call's share, with every entry's attributes.
        let ahead = lock(&self.ahead)
            .remove(&fh.0)
            .filter(|(from, _, _)| *from == offset);
        let (fetched, last_ones) = match ahead {
            Some((_, entries, last_ones)) => (entries, last_ones),
            None => match self.fetch_with_attrs(&h, &dir, offset) {
                Ok(x) => x,
                Err(e) => return reply.error(e),
            },
        };
        let mut all_added = true;
        let ttl = Self::ttl(&dir);
        let mut rest = fetched.into_iter().peekable();
        let mut last = offset;
        while let Some((e, attrs)) = rest.next() {
            let Some((qid, stat)) = attrs else {
                // Gone since the listing.
                last = e.offset;
                continue;
            };
            let dots = e.name == "." || e.name == "..";
            let ino = if dots {
                ino.0
            } else {
                self.intern(&dir.child(&e.name), &qid, true)
            };
            let attr = attr_of(ino, &stat);
            if reply.add(INodeNo(ino), e.offset, &e.name, &ttl, &attr, Generation(0)) {
                if !dots {
                    self.forget(req, INodeNo(ino), 1);
                }
                // Kept for the next call, which goes on after `last`.
                let mut left = vec![(e, Some((qid, stat)))];
                left.extend(rest);
                lock(&self.ahead).insert(fh.0, (last, left, last_ones));
                all_added = false;
                break;
            }
            last = e.offset;
        }
        if all_added && last_ones && last != offset {
            // The next call, from `last`, is answered empty at once.
            lock(&self.ahead).insert(fh.0, (last, Vec::new(), true));
        }
        reply.ok()
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.close(fh);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let got = self.remote(ino.0).and_then(|r| {
            let (answers, _, _) = self.on_path(&r, false, |fid| vec![FCall::TStatFs { fid }])?;
            match &answers[0] {
                Ok(FCall::RStatFs { statfs }) => Ok(*statfs),
                Ok(_) => Err(Errno::EIO),
                Err(e) => Err(errno_of(e)),
            }
        });
        match got {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.bsize,
            ),
            Err(_) => reply.statfs(0, 0, 0, 0, 0, 4096, 255, 4096),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let got = (|| {
            let dir = self.remote(parent.0)?;
            let name = name.to_str().ok_or(Errno::EINVAL)?;
            let child = dir.child(name);
            let flags = flags & (libc::O_ACCMODE | libc::O_EXCL | libc::O_TRUNC | libc::O_APPEND);
            let gid = req.gid();
            let (answers, conn, fid) = self.on_path(&dir, true, |fid| {
                let mut v = vec![FCall::TlCreate {
                    fid,
                    name: name.into(),
                    flags: flags.cast_unsigned(),
                    mode: mode & !umask,
                    gid,
                }];
                v.extend(Self::owner_reqs(req, fid));
                v.push(Self::getattr_req(fid));
                v
            })?;
            Self::ok(&answers[0])?;
            // (A refused chown of the new file leaves it root's.)
            let (qid, stat) = match Self::attr_answer(&answers[answers.len() - 1]) {
                Ok(x) => x,
                Err(e) => {
                    self.drop_fid(&conn, fid);
                    return Err(e);
                }
            };
            let ino = self.intern(&child, &qid, true);
            Ok((attr_of(ino, &stat), conn, fid))
        })();
        match got {
            Ok((attr, conn, fid)) => {
                let fh = self.new_handle(Handle::Remote { conn, fid });
                reply.created(&TTL, &attr, Generation(0), fh, FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }
}

fn reply_empty(done: Result<(), Errno>, reply: ReplyEmpty) {
    match done {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl<C: Cluster> Mfs<C> {
    fn remove(&self, parent: u64, name: &OsStr, flags: u32) -> Result<(), Errno> {
        let dir = self.remote(parent)?;
        let name = name.to_str().ok_or(Errno::EINVAL)?;
        let (answers, _, _) = self.on_path(&dir, false, |fid| {
            vec![FCall::TUnlinkAt {
                dirfd: fid,
                name: name.into(),
                flags,
            }]
        })?;
        Self::ok(&answers[0])
    }

    fn close(&self, fh: FileHandle) {
        lock(&self.ahead).remove(&fh.0);
        let Some(h) = lock(&self.handles).remove(&fh.0) else {
            return;
        };
        if let Handle::Remote { conn, fid } = &*h {
            self.drop_fid(conn, *fid);
        }
    }
}

/// Why `/mfs` could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(
        "no /dev/fuse on this machine: load the fuse module (`modprobe fuse`), or give the node's container /dev/fuse"
    )]
    NoFuse,
    #[error(
        "{0} is already mounted (another mosaicd?): unmount it (`umount {0}`) or set `mfs` in mosaicd.toml to another place"
    )]
    AlreadyMounted(String),
    #[error("cannot mount {0}: {1}")]
    Mount(String, std::io::Error),
}

/// A mounted `/mfs`.
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
    path: PathBuf,
    stats: Arc<Stats>,
}

/// Whether `path` is a mount point (its device differs from its parent's).
fn is_mount_point(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let here = std::fs::metadata(path)?;
    let parent = std::fs::metadata(path.join(".."))?;
    Ok(here.dev() != parent.dev() || here.ino() == parent.ino())
}

/// Mounts `/mfs` (or `at`) for `cluster`. A stale mount left there by a
/// mosaicd that died (its device gone: ENOTCONN) is detached first.
pub fn mount<C: Cluster>(cluster: C, at: &Path) -> Result<Mounted, MountError> {
    let shown = at.display().to_string();
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Err(match e.kind() {
            std::io::ErrorKind::NotFound => MountError::NoFuse,
            _ => MountError::Mount(shown, e),
        });
    }
    match std::fs::metadata(at) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            tracing::info!(at = %shown, "detaching a stale /mfs of an earlier mosaicd");
            nix::mount::umount2(at, nix::mount::MntFlags::MNT_DETACH)
                .map_err(|e| MountError::Mount(shown.clone(), e.into()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(at).map_err(|e| MountError::Mount(shown.clone(), e))?;
        }
        Err(e) => return Err(MountError::Mount(shown, e)),
        Ok(_) => {}
    }
    if is_mount_point(at).map_err(|e| MountError::Mount(shown.clone(), e))? {
        return Err(MountError::AlreadyMounted(shown));
    }
    let fs = Mfs::new(cluster);
    let stats = fs.stats();
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("mosaic".into()),
        fuser::MountOption::Subtype("mfs".into()),
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoDev,
    ];
    config.acl = fuser::SessionACL::All;
    config.n_threads = Some(4);
    config.clone_fd = true;
    let session = fuser::spawn_mount(fs, at, &config).map_err(|e| MountError::Mount(shown, e))?;
    raise_readahead(at);
    Ok(Mounted {
        session: Some(session),
        path: at.to_path_buf(),
        stats,
    })
}

/// FUSE starts with the default 128 KiB read-ahead; sequential reads of
/// a remote file go faster with 1 MiB in flight (one 9P read).
fn raise_readahead(at: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(at) else {
        return;
    };
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let knob = format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb");
    if let Err(e) = std::fs::write(&knob, "1024") {
        tracing::debug!(%knob, error = %e, "cannot raise /mfs read-ahead");
    }
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Unmounts; if files are still open there, detaches it (their
    /// processes see it end when this daemon does).
    pub fn unmount(mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        match nix::mount::umount2(&self.path, nix::mount::MntFlags::empty()) {
            Ok(()) => {
                if let Err(e) = session.umount_and_join() {
                    tracing::warn!(error = %e, "/mfs session ended with an error");
                }
            }
            Err(e) => {
                tracing::info!(error = %e, at = %self.path.display(), "/mfs busy: detaching it");
                let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
                // The session thread ends when the last user lets go.
                drop(session);
            }
        }
    }
}
