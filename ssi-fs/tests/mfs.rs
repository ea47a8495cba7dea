//! `/mfs` mounted for real (FUSE, root) over two in-process 9P servers on
//! loopback, each serving its own directory and a small synthetic `proc`:
//! what a program sees through it must be what it sees on the node.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mosaic_ssi_fs::client::{Stream, Transport};
use mosaic_ssi_fs::export::Export;
use mosaic_ssi_fs::mfs::{self, Cluster};
use mosaic_ssi_fs::server::{Session, serve_session};
use mosaic_ssi_fs::synth::{SynthNode, Synthetic};

/// A node's `proc`: `ps` and one process directory.
struct Proc(String);

impl Synthetic for Proc {
    fn get(&self, path: &[String]) -> Option<SynthNode> {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        Some(match p.as_slice() {
            [] => SynthNode::Dir(vec!["ps".into(), "load".into(), "42".into()]),
            ["ps"] => SynthNode::File(format!("HOME PID WHERE\n{} 42 {}\n", self.0, self.0).into()),
            ["load"] => SynthNode::File(b"0.5\n".to_vec()),
            ["42"] => SynthNode::Dir(vec!["where".into()]),
            ["42", "where"] => SynthNode::File(format!("{}\n", self.0).into()),
            _ => return None,
        })
    }
}

struct Nodes {
    addrs: Arc<Mutex<Vec<(String, SocketAddr)>>>,
    guest: Option<(u32, String)>,
}

impl Cluster for Nodes {
    fn here(&self) -> String {
        "alpha".into()
    }
    fn nodes(&self) -> Vec<String> {
        self.addrs
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
    fn home_of(&self, pid: u32) -> Option<String> {
        self.guest
            .as_ref()
            .filter(|(g, _)| *g == pid)
            .map(|(_, h)| h.clone())
    }
    fn connect(&self, node: &str) -> std::io::Result<Box<dyn Transport + Send>> {
        let addr = self
            .addrs
            .lock()
            .unwrap()
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, a)| *a)
            .ok_or_else(|| std::io::Error::other("no such node"))?;
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Box::new(Stream(s)))
    }
}

fn serve_dir(name: &str, dir: &Path) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let export = Arc::new(Export::open(dir, false).unwrap());
    let name = name.to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            conn.set_nodelay(true).unwrap();
            let session = Session::with_synthetic(export.clone(), Arc::new(Proc(name.clone())));
            std::thread::spawn(move || serve_session(session, conn));
        }
    });
    addr
}

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mosaic-mfs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn can_mount() -> bool {
    nix::unistd::geteuid().is_root() && Path::new("/dev/fuse").exists()
}

#[test]
fn files_of_two_nodes_read_write_and_map_through_mfs() {
    if !can_mount() {
        eprintln!("skipped: needs root and /dev/fuse");
        return;
    }
    let (a, b, at) = (fresh("a"), fresh("b"), fresh("mnt"));
    std::fs::write(a.join("hello"), "from alpha\n").unwrap();
    std::fs::create_dir(b.join("sub")).unwrap();
    std::fs::write(b.join("sub/data"), vec![7u8; 300_000]).unwrap();
    let addrs = Arc::new(Mutex::new(vec![
        ("alpha".into(), serve_dir("alpha", &a)),
        ("beta".into(), serve_dir("beta", &b)),
    ]));
    let nodes = Nodes {
        addrs: addrs.clone(),
        guest: None,
    };
    let mounted = mfs::mount(nodes, &at).unwrap();
    // A second mount there says what to do.
    let again = mfs::mount(
        Nodes {
            addrs: addrs.clone(),
            guest: None,
        },
        &at,
    );
    match again {
        Err(e @ mfs::MountError::AlreadyMounted(_)) => {
            assert!(e.to_string().contains("umount"), "{e}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("mounted twice"),
    }

    // The root: nodes, here, home, proc.
    let mut names: Vec<String> = std::fs::read_dir(&at)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["alpha", "beta", "here", "home", "proc"]);
    assert_eq!(
        std::fs::read_link(at.join("here")).unwrap(),
        Path::new("alpha")
    );
    assert_eq!(
        std::fs::read_link(at.join("home")).unwrap(),
        Path::new("alpha")
    );
    assert_eq!(
        std::fs::read_to_string(at.join("home/hello")).unwrap(),
        "from alpha\n"
    );

    // Reads, with stat, of a bigger file.
    let data = at.join("beta/sub/data");
    assert_eq!(std::fs::metadata(&data).unwrap().len(), 300_000);
    assert_eq!(std::fs::read(&data).unwrap(), vec![7u8; 300_000]);

    // Create, write, fsync, append, truncate, chmod.
    let new = at.join("beta/sub/new");
    let mut f = std::fs::File::create(&new).unwrap();
    f.write_all(b"written through mfs").unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(
        std::fs::read_to_string(b.join("sub/new")).unwrap(),
        "written through mfs"
    );
    let mut f = std::fs::OpenOptions::new().append(true).open(&new).unwrap();
    f.write_all(b", twice").unwrap();
    drop(f);
    assert_eq!(
        std::fs::read_to_string(b.join("sub/new")).unwrap(),
        "written through mfs, twice"
    );
    let f = std::fs::OpenOptions::new().write(true).open(&new).unwrap();
    f.set_len(7).unwrap();
    drop(f);
    assert_eq!(std::fs::read_to_string(&new).unwrap(), "written");
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        std::fs::metadata(b.join("sub/new")).unwrap().mode() & 0o777,
        0o600
    );

    // A file changed on the node is read anew (the page cache is dropped
    // when its mtime or size changed).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(b.join("sub/new"), "changed on beta").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(std::fs::read_to_string(&new).unwrap(), "changed on beta");

    // Seek and read in the middle.
    let mut f = std::fs::File::open(&new).unwrap();
    f.seek(SeekFrom::Start(8)).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "on beta");

    // mkdir, rename (a file and a directory), symlink, readlink, unlink,
    // rmdir.
    std::fs::create_dir(at.join("beta/d")).unwrap();
    assert!(b.join("d").is_dir());
    std::fs::rename(&new, at.join("beta/d/moved")).unwrap();
    assert_eq!(
        std::fs::read_to_string(b.join("d/moved")).unwrap(),
        "changed on beta"
    );
    std::fs::rename(at.join("beta/d"), at.join("beta/e")).unwrap();
    assert_eq!(
        std::fs::read_to_string(at.join("beta/e/moved")).unwrap(),
        "changed on beta"
    );
    std::os::unix::fs::symlink("moved", at.join("beta/e/link")).unwrap();
    assert_eq!(
        std::fs::read_link(b.join("e/link")).unwrap(),
        Path::new("moved")
    );
    assert_eq!(
        std::fs::read_link(at.join("beta/e/link")).unwrap(),
        Path::new("moved")
    );
    assert_eq!(
        std::fs::read_to_string(at.join("beta/e/link")).unwrap(),
        "changed on beta"
    );
    std::fs::remove_file(at.join("beta/e/link")).unwrap();
    std::fs::remove_file(at.join("beta/e/moved")).unwrap();
    std::fs::remove_dir(at.join("beta/e")).unwrap();
    assert!(!b.join("e").exists());
    assert_eq!(
        std::fs::read_to_string(at.join("beta/nothing"))
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::NotFound
    );

    // mmap(MAP_PRIVATE) of a file through mfs.
    let f = std::fs::File::open(&data).unwrap();
    // SAFETY: a private read-only mapping of an open file, unmapped below.
    let map = unsafe {
        nix::sys::mman::mmap(
            None,
            std::num::NonZeroUsize::new(300_000).unwrap(),
            nix::sys::mman::ProtFlags::PROT_READ,
            nix::sys::mman::MapFlags::MAP_PRIVATE,
            &f,
            0,
        )
        .unwrap()
    };
    // SAFETY: the mapping is 300_000 readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(map.as_ptr() as *const u8, 300_000) };
    assert!(bytes.iter().all(|&b| b == 7));
    // SAFETY: the mapping made above, not used after.
    unsafe { nix::sys::mman::munmap(map, 300_000).unwrap() };

    // A listing of a big directory (several 9P reads, readdirplus).
    for i in 0..500 {
        std::fs::write(a.join(format!("f{i:03}")), "").unwrap();
    }
    let n = std::fs::read_dir(at.join("alpha")).unwrap().count();
    assert_eq!(n, 501);

    // proc: one merged table, and each node's tree.
    let ps = std::fs::read_to_string(at.join("proc/ps")).unwrap();
    assert_eq!(ps, "HOME PID WHERE\nalpha 42 alpha\nbeta 42 beta\n");
    assert_eq!(
        std::fs::read_to_string(at.join("proc/beta/42/where")).unwrap(),
        "beta\n"
    );
    assert!(std::fs::write(at.join("proc/beta/load"), "1").is_err());

    // Nodes come and go with membership.
    addrs.lock().unwrap().retain(|(n, _)| n != "beta");
    let names: Vec<String> = std::fs::read_dir(&at)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.contains(&"beta".to_string()), "{names:?}");

    mounted.unmount();
    assert!(!at.join("here").exists());
    for d in [a, b, at] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn home_is_the_callers_home_node() {
    if !can_mount() {
        eprintln!("skipped: needs root and /dev/fuse");
        return;
    }
    let (a, b, at) = (fresh("ha"), fresh("hb"), fresh("hmnt"));
    std::fs::write(a.join("who"), "alpha").unwrap();
    std::fs::write(b.join("who"), "beta").unwrap();
    // A shell plays a guest whose home is beta: what it runs is its
    // descendant, and sees beta's files as home; this process sees alpha.
    let guest = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sleep 1; readlink {0}/home; cat {0}/home/who",
            at.display()
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let nodes = Nodes {
        addrs: Arc::new(Mutex::new(vec![
            ("alpha".into(), serve_dir("alpha", &a)),
            ("beta".into(), serve_dir("beta", &b)),
        ])),
        guest: Some((guest.id(), "beta".into())),
    };
    let mounted = mfs::mount(nodes, &at).unwrap();
    let out = guest.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "beta\nbeta");
    assert_eq!(
        std::fs::read_link(at.join("home")).unwrap(),
        Path::new("alpha")
    );
    assert_eq!(
        std::fs::read_to_string(at.join("home/who")).unwrap(),
        "alpha"
    );
    mounted.unmount();
    for d in [a, b, at] {
        let _ = std::fs::remove_dir_all(d);
    }
}
