//! A directory tree served to peers, with no way out of it.
//!
//! Every handle is an `O_PATH | O_NOFOLLOW` descriptor plus its path from
//! the export's root. A walk takes one name at a time, relative to the
//! parent's descriptor, never following a symbolic link (a link is a
//! handle of its own: the client reads it and resolves it); `..` drops the
//! last component and reopens the rest from the root with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`. Every operation is an
//! `*at` call on a held descriptor, or opens `/proc/self/fd/N` of a handle
//! that is not a link, so a name swapped for a symbolic link between two
//! calls can only make a call fail, never reach outside the export.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// What a file operation on the export returns when it fails: an errno,
/// as 9P2000.L's `Rlerror` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FsError(pub Errno);

impl From<Errno> for FsError {
    fn from(e: Errno) -> Self {
        FsError(e)
    }
}

impl From<std::io::Error> for FsError {
    fn from(e: std::io::Error) -> Self {
        FsError(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }
}

pub type Result<T> = std::result::Result<T, FsError>;

/// A served directory tree.
#[derive(Debug)]
pub struct Export {
    root: OwnedFd,
    read_only: bool,
    /// Only these trees of it are served (components from the root), and
    /// the directories on the way to them, read-only and listing only
    /// what leads there; empty: all of it.
    only: Vec<Vec<String>>,
    /// Never served (the node's own `/mfs`: walking into it would ask
    /// this very server again).
    hidden: Vec<Vec<String>>,
}

/// Where a path stands against an export list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In a served tree (or no list).
    Inside,
    /// A directory on the way to one.
    OnTheWay,
    /// Not served.
    Hidden,
}

/// A file, directory or link of an export.
#[derive(Debug)]
pub struct Handle {
    fd: OwnedFd,
    /// Components from the export's root.
    path: Vec<String>,
}

impl Handle {
    /// Its path from the export's root ("" for the root).
    pub fn path(&self) -> String {
        self.path.join("/")
    }

    /// Its last component ("" for the root).
    pub fn name(&self) -> &str {
        self.path.last().map_or("", String::as_str)
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub ino: u64,
    /// `d_type` (DT_DIR, DT_REG, DT_LNK, ...).
    pub kind: u8,
}

/// The components of `p` from `root` (`p` absolute under it, or relative).
fn components(p: &Path, root: &Path) -> Result<Vec<String>> {
    let rel = p.strip_prefix(root).unwrap_or(p);
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => {
                parts.push(n.to_str().ok_or(FsError(Errno::EINVAL))?.to_string())
            }
            std::path::Component::RootDir | std::path::Component::CurDir => {}
            _ => return Err(FsError(Errno::EINVAL)),
        }
    }
    Ok(parts)
}

/// A name the client may give: one component, not `.` or `..`.
fn plain_name(name: &str) -> Result<CString> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(FsError(Errno::EINVAL));
    }
    CString::new(name).map_err(|_| FsError(Errno::EINVAL))
}

/// `openat2` beneath `dir`, following no symbolic link at all.
fn open_beneath(dir: &impl AsFd, path: &str, flags: OFlag, mode: Mode) -> Result<OwnedFd> {
    let path = if path.is_empty() { "." } else { path };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    Ok(nix::fcntl::openat2(dir.as_fd(), path, how)?)
}

impl Export {
    /// Serves the tree at `root` (writable unless `read_only`).
    pub fn open(root: &Path, read_only: bool) -> Result<Export> {
        let root = nix::fcntl::open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Export {
            root,
            read_only,
            only: Vec::new(),
            hidden: Vec::new(),
        })
    }

    /// Never serves `path` (absolute, or relative to the export's root)
    /// nor anything under it.
    pub fn hide(mut self, path: &Path, root: &Path) -> Result<Export> {
        self.hidden.push(components(path, root)?);
        Ok(self)
    }

    /// Serves only the trees `only` (absolute paths, or relative to the
    /// export's root; each a real directory, no link on the way) and the
    /// directories leading to them, which can be listed and walked but not
    /// changed and show only what leads to a served tree.
    pub fn only(mut self, only: &[std::path::PathBuf], root: &Path) -> Result<Export> {
        for p in only {
            self.only.push(components(p, root)?);
        }
        Ok(self)
    }

    fn place(&self, path: &[String]) -> Place {
        if self.hidden.iter().any(|h| path.starts_with(h)) {
            Place::Hidden
        } else if self.only.is_empty() || self.only.iter().any(|t| path.starts_with(t)) {
            Place::Inside
        } else if self.only.iter().any(|t| t.starts_with(path)) {
            Place::OnTheWay
        } else {
            Place::Hidden
        }
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            Err(FsError(Errno::EROFS))
        } else {
            Ok(())
        }
    }

    /// `h` may be changed (or have its entries changed).
    fn changeable(&self, h: &Handle) -> Result<()> {
        self.writable()?;
        if self.place(&h.path) == Place::Inside {
            Ok(())
        } else {
            Err(FsError(Errno::EACCES))
        }
    }

    /// The root.
    pub fn root(&self) -> Result<Handle> {
        Ok(Handle {
            fd: open_beneath(&self.root, "", OFlag::O_PATH, Mode::empty())?,
            path: Vec::new(),
        })
    }

    /// A second handle on the same file.
    pub fn clone_handle(&self, h: &Handle) -> Result<Handle> {
        Ok(Handle {
            fd: h.fd.try_clone()?,
            path: h.path.clone(),
        })
    }

    /// The entry `name` of directory `from` (`..`: its parent, the root's
    /// parent being the root; `.`: itself). A symbolic link is not followed.
    pub fn walk(&self, from: &Handle, name: &str) -> Result<Handle> {
        match name {
            "." => self.clone_handle(from),
            ".." => {
                let mut path = from.path.clone();
                path.pop();
                let fd = open_beneath(&self.root, &path.join("/"), OFlag::O_PATH, Mode::empty())?;
                Ok(Handle { fd, path })
            }
            _ => {
                let c = plain_name(name)?;
                let mut path = from.path.clone();
                path.push(name.to_string());
                if self.place(&path) == Place::Hidden {
                    return Err(FsError(Errno::ENOENT));
                }
                let fd = nix::fcntl::openat(
                    from.fd.as_fd(),
                    c.as_c_str(),
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                Ok(Handle { fd, path })
            }
        }
    }

    /// Its attributes (of the link itself, for a link).
    pub fn stat(&self, h: &Handle) -> Result<libc::stat> {
        Ok(nix::sys::stat::fstatat(
            h.fd.as_fd(),
            c"",
            nix::fcntl::AtFlags::AT_EMPTY_PATH | nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?)
    }

    /// Opens a file or directory for I/O with `flags` (O_RDONLY, O_WRONLY,
    /// O_RDWR, O_TRUNC, O_APPEND, ...); a link cannot be opened.
    pub fn open_file(&self, h: &Handle, flags: OFlag) -> Result<File> {
        let access = flags & OFlag::O_ACCMODE;
        if access != OFlag::O_RDONLY || flags.contains(OFlag::O_TRUNC) {
            self.changeable(h)?;
        }
        match self.stat(h)?.st_mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFDIR => {}
            libc::S_IFLNK => return Err(FsError(Errno::ELOOP)),
            // FIFOs, devices, sockets: an open could block the serving
            // thread, and their data is not a file's.
            _ => return Err(FsError(Errno::EOPNOTSUPP)),
        }
        let keep = OFlag::O_ACCMODE
            | OFlag::O_TRUNC
            | OFlag::O_APPEND
            | OFlag::O_NONBLOCK
            | OFlag::O_DIRECTORY
            | OFlag::O_SYNC
            | OFlag::O_DSYNC;
        let fd = nix::fcntl::open(
            format!("/proc/self/fd/{}", h.fd.as_raw_fd()).as_str(),
            (flags & keep) | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(File::from(fd))
    }

    /// Creates file `name` in directory `dir` (it must not exist) and opens
    /// it with `flags`.
    pub fn create(
        &self,
        dir: &Handle,
        name: &str,
        flags: OFlag,
        mode: u32,
    ) -> Result<(Handle, File)> {
        self.changeable(dir)?;
        plain_name(name)?;
        let keep = OFlag::O_ACCMODE | OFlag::O_APPEND | OFlag::O_NONBLOCK | OFlag::O_SYNC;
        let file = open_beneath(
            &dir.fd,
            name,
            (flags & keep) | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(mode & 0o7777),
        )?;
        let h = self.walk(dir, name)?;
        Ok((h, File::from(file)))
    }

    /// Makes directory `name` in `dir`.
    pub fn mkdir(&self, dir: &Handle, name: &str, mode: u32) -> Result<Handle> {
        self.changeable(dir)?;
        let c = plain_name(name)?;
        nix::sys::stat::mkdirat(
            dir.fd.as_fd(),
            c.as_c_str(),
            Mode::from_bits_truncate(mode & 0o7777),
        )?;
        self.walk(dir, name)
    }

    /// Makes symbolic link `name` in `dir`, pointing at `target` (any text:
    /// the export never follows it).
    pub fn symlink(&self, dir: &Handle, name: &str, target: &str) -> Result<Handle> {
        self.changeable(dir)?;
        let c = plain_name(name)?;
        nix::unistd::symlinkat(target, dir.fd.as_fd(), c.as_c_str())?;
        self.walk(dir, name)
    }

    /// The target of a symbolic link.
    pub fn readlink(&self, h: &Handle) -> Result<String> {
        let target = nix::fcntl::readlinkat(h.fd.as_fd(), c"")?;
        Ok(target.to_string_lossy().into_owned())
    }

    /// Removes `name` from `dir` (a directory if `dir_too`, as AT_REMOVEDIR).
    pub fn unlink(&self, dir: &Handle, name: &str, directory: bool) -> Result<()> {
        self.changeable(dir)?;
        let c = plain_name(name)?;
        let how = if directory {
            nix::unistd::UnlinkatFlags::RemoveDir
        } else {
            nix::unistd::UnlinkatFlags::NoRemoveDir
        };
        nix::unistd::unlinkat(dir.fd.as_fd(), c.as_c_str(), how)?;
        Ok(())
    }

    /// Renames `old` in `from` to `new` in `to`.
    pub fn rename(&self, from: &Handle, old: &str, to: &Handle, new: &str) -> Result<()> {
        self.changeable(from)?;
        self.changeable(to)?;
        let (o, n) = (plain_name(old)?, plain_name(new)?);
        nix::fcntl::renameat(from.fd.as_fd(), o.as_c_str(), to.fd.as_fd(), n.as_c_str())?;
        Ok(())
    }

    /// The entries of a directory, without `.` and `..`.
    pub fn readdir(&self, h: &Handle) -> Result<Vec<Entry>> {
        let filter = self.place(&h.path) == Place::OnTheWay || !self.hidden.is_empty();
        let dir = self.open_file(h, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let mut d = nix::dir::Dir::from_fd(OwnedFd::from(dir))?;
        let mut out = Vec::new();
        for e in d.iter() {
            let e = e?;
            let name = OsStr::from_bytes(e.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            if filter {
                let mut path = h.path.clone();
                path.push(name.to_string_lossy().into_owned());
                if self.place(&path) == Place::Hidden {
                    continue;
                }
            }
            out.push(Entry {
                name: name.to_string_lossy().into_owned(),
                ino: e.ino(),
                kind: match e.file_type() {
                    Some(nix::dir::Type::Directory) => libc::DT_DIR,
                    Some(nix::dir::Type::File) => libc::DT_REG,
                    Some(nix::dir::Type::Symlink) => libc::DT_LNK,
                    Some(nix::dir::Type::Fifo) => libc::DT_FIFO,
                    Some(nix::dir::Type::Socket) => libc::DT_SOCK,
                    Some(nix::dir::Type::CharacterDevice) => libc::DT_CHR,
                    Some(nix::dir::Type::BlockDevice) => libc::DT_BLK,
                    None => libc::DT_UNKNOWN,
                },
            });
        }
        Ok(out)
    }

    /// Changes the permission bits (not of a link).
    pub fn chmod(&self, h: &Handle, mode: u32) -> Result<()> {
        self.changeable(h)?;
        // SAFETY: fchmodat2 with a descriptor we hold, an empty C string and
        // integer flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fchmodat2,
                h.fd.as_raw_fd(),
                c"".as_ptr(),
                mode & 0o7777,
                libc::AT_EMPTY_PATH,
            )
        };
        if r < 0 {
            Err(FsError(Errno::last()))
        } else {
            Ok(())
        }
    }

    /// Changes owner and group (`None`: unchanged).
    pub fn chown(&self, h: &Handle, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        self.changeable(h)?;
        nix::unistd::fchownat(
            h.fd.as_fd(),
            c"",
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )?;
        Ok(())
    }

    /// Truncates or extends a file to `size` bytes.
    pub fn truncate(&self, h: &Handle, size: u64) -> Result<()> {
        let f = self.open_file(h, OFlag::O_WRONLY)?;
        f.set_len(size)?;
        Ok(())
    }

    /// Sets access and modification times (`None`: unchanged; each a
    /// `timespec`, UTIME_NOW allowed).
    pub fn utimes(
        &self,
        h: &Handle,
        atime: Option<libc::timespec>,
        mtime: Option<libc::timespec>,
    ) -> Result<()> {
        self.changeable(h)?;
        let omit = libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        };
        let times = [atime.unwrap_or(omit), mtime.unwrap_or(omit)];
        // SAFETY: utimensat with a descriptor we hold, an empty C string, two
        // initialized timespecs and integer flags.
        let r = unsafe {
            libc::utimensat(
                h.fd.as_raw_fd(),
                c"".as_ptr(),
                times.as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r < 0 {
            Err(FsError(Errno::last()))
        } else {
            Ok(())
        }
    }

    /// The file system's numbers.
    pub fn statfs(&self, h: &Handle) -> Result<nix::sys::statvfs::Statvfs> {
        Ok(nix::sys::statvfs::fstatvfs(&h.fd)?)
    }

    /// Whether `name` in `dir` is still the file `h` stands for (a handle
    /// keeps its path; the file may have been renamed since).
    pub fn still_named(&self, dir: &Handle, name: &str, h: &Handle) -> Result<bool> {
        let c = plain_name(name)?;
        let there = nix::sys::stat::fstatat(
            dir.fd.as_fd(),
            c.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        let mine = self.stat(h)?;
        Ok(there.is_ok_and(|t| t.st_dev == mine.st_dev && t.st_ino == mine.st_ino))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An export in a fresh directory, with `outside` beside it.
    fn setup(name: &str) -> (std::path::PathBuf, Export) {
        let base =
            std::env::temp_dir().join(format!("mosaic-export-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("export/dir")).unwrap();
        std::fs::write(base.join("outside"), "secret").unwrap();
        std::fs::write(base.join("export/dir/file"), "inside").unwrap();
        let e = Export::open(&base.join("export"), false).unwrap();
        (base, e)
    }

    fn read(e: &Export, h: &Handle) -> Result<String> {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e.open_file(h, OFlag::O_RDONLY)?, &mut s)?;
        Ok(s)
    }

    #[test]
    fn dot_dot_never_leaves_the_root() {
        let (base, e) = setup("dotdot");
        let root = e.root().unwrap();
        let up = e.walk(&root, "..").unwrap();
        assert_eq!(up.path(), "");
        let dir = e.walk(&root, "dir").unwrap();
        let up = e.walk(&e.walk(&dir, "..").unwrap(), "..").unwrap();
        assert_eq!(up.path(), "");
        assert!(e.readdir(&up).unwrap().iter().any(|x| x.name == "dir"));
        // Names with a slash, or that are dots, are refused.
        for bad in ["../outside", "dir/../../outside", "/etc", ""] {
            assert_eq!(e.walk(&root, bad).unwrap_err().0, Errno::EINVAL, "{bad}");
        }
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn symbolic_links_are_never_followed_by_the_server() {
        let (base, e) = setup("links");
        std::os::unix::fs::symlink(base.join("outside"), base.join("export/abs")).unwrap();
        std::os::unix::fs::symlink("../outside", base.join("export/rel")).unwrap();
        std::os::unix::fs::symlink("/", base.join("export/slash")).unwrap();
        let root = e.root().unwrap();
        for link in ["abs", "rel"] {
            let h = e.walk(&root, link).unwrap();
            assert_eq!(e.stat(&h).unwrap().st_mode & libc::S_IFMT, libc::S_IFLNK);
            assert_eq!(read(&e, &h).unwrap_err().0, Errno::ELOOP, "{link}");
            assert!(e.open_file(&h, OFlag::O_WRONLY).is_err());
            assert!(e.truncate(&h, 0).is_err());
        }
        // Through a link to a directory: not a directory to walk in.
        let slash = e.walk(&root, "slash").unwrap();
        assert_eq!(e.walk(&slash, "etc").unwrap_err().0, Errno::ENOTDIR);
        assert_eq!(e.readlink(&slash).unwrap(), "/");
        assert_eq!(
            std::fs::read_to_string(base.join("outside")).unwrap(),
            "secret"
        );
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn a_directory_swapped_for_a_link_cannot_lead_outside() {
        let (base, e) = setup("swap");
        let root = e.root().unwrap();
        let dir = e.walk(&root, "dir").unwrap();
        let file = e.walk(&dir, "file").unwrap();
        // The attacker renames the directory away and puts a link to the
        // outside in its place.
        std::fs::rename(base.join("export/dir"), base.join("export/moved")).unwrap();
        std::os::unix::fs::symlink(&base, base.join("export/dir")).unwrap();
        // Held handles follow the directory, not the name.
        assert_eq!(read(&e, &file).unwrap(), "inside");
        // A fresh walk reaches the link, and stops there.
        let dir2 = e.walk(&root, "dir").unwrap();
        assert_eq!(e.walk(&dir2, "outside").unwrap_err().0, Errno::ENOTDIR);
        // `..` from a handle below the swapped name reopens by path, which
        // now crosses the link: refused, not followed.
        let sub = e.mkdir(&dir, "sub", 0o755).unwrap();
        assert!(e.walk(&sub, "..").is_err());
        // Creating through the old handle stays inside (in `moved`).
        let (_, mut f) = e.create(&dir, "new", OFlag::O_WRONLY, 0o644).unwrap();
        std::io::Write::write_all(&mut f, b"x").unwrap();
        assert!(base.join("export/moved/new").exists());
        assert!(!base.join("new").exists());
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn files_are_created_written_renamed_and_removed_inside() {
        let (base, e) = setup("ops");
        let root = e.root().unwrap();
        let d = e.mkdir(&root, "d", 0o750).unwrap();
        let (h, mut f) = e.create(&d, "a", OFlag::O_RDWR, 0o600).unwrap();
        std::io::Write::write_all(&mut f, b"hello").unwrap();
        assert_eq!(e.stat(&h).unwrap().st_size, 5);
        assert_eq!(
            e.create(&d, "a", OFlag::O_RDWR, 0o600).unwrap_err().0,
            Errno::EEXIST
        );
        e.truncate(&h, 2).unwrap();
        assert_eq!(read(&e, &h).unwrap(), "he");
        e.chmod(&h, 0o640).unwrap();
        assert_eq!(e.stat(&h).unwrap().st_mode & 0o7777, 0o640);
        e.rename(&d, "a", &root, "b").unwrap();
        assert_eq!(
            std::fs::read_to_string(base.join("export/b")).unwrap(),
            "he"
        );
        let l = e.symlink(&root, "l", "b").unwrap();
        assert_eq!(e.readlink(&l).unwrap(), "b");
        e.unlink(&root, "l", false).unwrap();
        e.unlink(&root, "b", false).unwrap();
        e.unlink(&root, "d", true).unwrap();
        let names: Vec<String> = e
            .readdir(&root)
            .unwrap()
            .into_iter()
            .map(|x| x.name)
            .collect();
        assert_eq!(names, ["dir"]);
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn a_read_only_export_refuses_every_change() {
        let (base, _) = setup("ro");
        let e = Export::open(&base.join("export"), true).unwrap();
        let root = e.root().unwrap();
        let dir = e.walk(&root, "dir").unwrap();
        let file = e.walk(&dir, "file").unwrap();
        assert_eq!(read(&e, &file).unwrap(), "inside");
        let rofs = |r: Result<()>| assert_eq!(r.unwrap_err().0, Errno::EROFS);
        rofs(e.open_file(&file, OFlag::O_WRONLY).map(drop));
        rofs(e.create(&dir, "x", OFlag::O_WRONLY, 0o644).map(drop));
        rofs(e.mkdir(&dir, "x", 0o755).map(drop));
        rofs(e.unlink(&dir, "file", false));
        rofs(e.rename(&dir, "file", &root, "y"));
        rofs(e.chmod(&file, 0o600));
        rofs(e.truncate(&file, 0));
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn an_export_list_serves_its_trees_and_only_the_way_to_them() {
        let (base, _) = setup("list");
        let ex = base.join("export");
        std::fs::create_dir_all(ex.join("srv/data/sub")).unwrap();
        std::fs::create_dir_all(ex.join("srv/private")).unwrap();
        std::fs::create_dir_all(ex.join("home/u")).unwrap();
        std::fs::write(ex.join("srv/data/sub/f"), "served").unwrap();
        std::fs::write(ex.join("srv/note"), "hidden").unwrap();
        let e = Export::open(&ex, false)
            .unwrap()
            .only(&[ex.join("srv/data"), "home".into()], &ex)
            .unwrap();
        let root = e.root().unwrap();
        let names = |h: &Handle| {
            let mut v: Vec<String> = e.readdir(h).unwrap().into_iter().map(|x| x.name).collect();
            v.sort();
            v
        };
        // The way: only what leads to a served tree, and no changes.
        assert_eq!(names(&root), ["home", "srv"]);
        assert_eq!(e.walk(&root, "dir").unwrap_err().0, Errno::ENOENT);
        let srv = e.walk(&root, "srv").unwrap();
        assert_eq!(names(&srv), ["data"]);
        assert_eq!(e.walk(&srv, "note").unwrap_err().0, Errno::ENOENT);
        assert_eq!(e.walk(&srv, "private").unwrap_err().0, Errno::ENOENT);
        let acces = |r: Result<()>| assert_eq!(r.unwrap_err().0, Errno::EACCES);
        acces(e.create(&srv, "x", OFlag::O_WRONLY, 0o644).map(drop));
        acces(e.mkdir(&root, "x", 0o755).map(drop));
        acces(e.unlink(&srv, "data", true));
        acces(e.rename(&root, "srv", &root, "y"));
        acces(e.chmod(&srv, 0o700));
        // Inside: everything, and `..` back out is the way again.
        let data = e.walk(&srv, "data").unwrap();
        let sub = e.walk(&data, "sub").unwrap();
        let f = e.walk(&sub, "f").unwrap();
        assert_eq!(read(&e, &f).unwrap(), "served");
        e.create(&sub, "new", OFlag::O_WRONLY, 0o644).unwrap();
        e.rename(&sub, "new", &data, "moved").unwrap();
        assert!(ex.join("srv/data/moved").exists());
        acces(e.rename(&data, "moved", &srv, "moved"));
        let up = e.walk(&data, "..").unwrap();
        assert_eq!(names(&up), ["data"]);
        let home = e.walk(&root, "home").unwrap();
        assert_eq!(names(&home), ["u"]);
        // A hidden tree (the node's own /mfs) is neither listed nor walked.
        let e = Export::open(&ex, false)
            .unwrap()
            .hide(&ex.join("srv/data"), &ex)
            .unwrap();
        let root = e.root().unwrap();
        let srv = e.walk(&root, "srv").unwrap();
        let listed: Vec<String> = e
            .readdir(&srv)
            .unwrap()
            .into_iter()
            .map(|x| x.name)
            .collect();
        assert!(!listed.contains(&"data".to_string()), "{listed:?}");
        assert!(listed.contains(&"note".to_string()), "{listed:?}");
        assert_eq!(e.walk(&srv, "data").unwrap_err().0, Errno::ENOENT);
        let _ = std::fs::remove_dir_all(base);
    }
}
