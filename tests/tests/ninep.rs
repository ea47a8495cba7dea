//! The 9P2000.L server against third-party clients: diod's `diodcat` and
//! `diodls` (attach, walk, open, read, readdir, getattr) and Python's
//! `p9fs` (create, write, read, getattr, mkdir, rename, unlink), served by
//! `mosaic-9p` (the server on a plain loopback port), and escapes refused.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use mosaic_tests::{bin, text, wait_for};

/// `mosaic-9p` serving `dir` on `port`, killed when dropped.
struct Server(Child);

impl Server {
    fn start(dir: &Path, port: u16) -> Server {
        let s = Server(
            Command::new(bin("mosaic-9p"))
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .arg(dir)
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for("the 9P server to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn diod(tool: &str, port: u16, args: &[&str]) -> Output {
    Command::new(tool)
        .args(["-s", &format!("127.0.0.1:{port}"), "-a", "/"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} must be installed (apt-get install diod): {e}"))
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("mosaic-test-9p-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("export/sub")).unwrap();
    std::fs::write(d.join("outside"), "secret\n").unwrap();
    std::fs::write(d.join("export/sub/f.txt"), "hello from the export\n").unwrap();
    std::os::unix::fs::symlink(d.join("outside"), d.join("export/abs")).unwrap();
    std::os::unix::fs::symlink("../outside", d.join("export/rel")).unwrap();
    d
}

#[test]
fn diods_tools_attach_walk_read_list_and_stat() {
    let d = scratch("diod");
    let _s = Server::start(&d.join("export"), 45640);
    let cat = diod("diodcat", 45640, &["sub/f.txt"]);
    assert!(cat.status.success(), "{}", text(&cat));
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout),
        "hello from the export\n"
    );
    let ls = diod("diodls", 45640, &["-l", "sub"]);
    assert!(ls.status.success(), "{}", text(&ls));
    let listing = String::from_utf8_lossy(&ls.stdout);
    let line = listing
        .lines()
        .find(|l| l.ends_with(" f.txt"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(line.starts_with("-rw-") && line.contains(" 22 "), "{line}");
    let top = diod("diodls", 45640, &[]);
    let names: Vec<&str> = std::str::from_utf8(&top.stdout).unwrap().lines().collect();
    for n in ["abs", "rel", "sub"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn no_path_leads_outside_the_export() {
    let d = scratch("escape");
    let _s = Server::start(&d.join("export"), 45641);
    for path in [
        "../outside",
        "sub/../../outside",
        "abs",
        "rel",
        "/../outside",
        "sub/../..",
    ] {
        let out = diod("diodcat", 45641, &[path]);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("secret"),
            "{path}: {}",
            text(&out)
        );
    }
    // A directory swapped for a link to the outside while served.
    std::fs::rename(d.join("export/sub"), d.join("export/moved")).unwrap();
    std::os::unix::fs::symlink(&d, d.join("export/sub")).unwrap();
    let out = diod("diodcat", 45641, &["sub/outside"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("secret"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn p9fs_creates_writes_renames_and_removes() {
    let d = scratch("p9fs");
    let export = d.join("export");
    let _s = Server::start(&export, 45642);
    let script = r#"
import sys, p9fs
fs = p9fs.P9FileSystem(host="127.0.0.1", port=45642, username="root", version="9P2000.L", aname="/")
with fs.open("new.txt", "wb") as f:
    f.write(b"written through 9P\n")
print(fs.cat_file("new.txt").decode(), end="")
print(fs.info("new.txt")["size"])
fs.mkdir("d2")
fs.mv("new.txt", "d2/moved.txt")
print(sorted(fs.ls("d2", detail=False)))
fs.rm("sub/f.txt")
print(sorted(fs.ls("", detail=False)))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "p9fs must be installed (pip install p9fs): {}",
        text(&out)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("written through 9P\n19\n"), "{said}");
    assert!(said.contains("d2/moved.txt"), "{said}");
    assert_eq!(
        std::fs::read_to_string(export.join("d2/moved.txt")).unwrap(),
        "written through 9P\n"
    );
    assert!(!export.join("new.txt").exists());
    assert!(!export.join("sub/f.txt").exists());
    assert_eq!(
        std::fs::read_to_string(d.join("outside")).unwrap(),
        "secret\n"
    );
    let _ = std::fs::remove_dir_all(&d);
}
