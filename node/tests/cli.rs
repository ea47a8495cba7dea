//! The admin CLI's help and its one-line reasons when something is missing.

use std::process::Command;

fn mosaic(args: &[&str], cluster_dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(args)
        .env("MOSAIC_CLUSTER_DIR", cluster_dir)
        .env_remove("MOSAIC_SOCKET")
        .output()
        .unwrap()
}

fn empty_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("mosaic-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_command_has_help() {
    let dir = empty_dir("help");
    for args in [
        vec!["--help"],
        vec!["nodes", "--help"],
        vec!["mon", "--help"],
        vec!["keygen", "--help"],
        vec!["cluster", "--help"],
        vec!["cluster", "up", "--help"],
        vec!["cluster", "down", "--help"],
        vec!["cluster", "exec", "--help"],
        vec!["cluster", "add", "--help"],
        vec!["cluster", "status", "--help"],
    ] {
        let out = mosaic(&args, &dir);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_mosaicd"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--config"));
}

#[test]
fn no_daemon_says_how_to_start_one() {
    let dir = empty_dir("nodaemon");
    // Only meaningful where no real daemon runs on the default socket.
    if std::path::Path::new(mosaic_node::DEFAULT_SOCKET).exists() {
        return;
    }
    let out = mosaic(&["nodes"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("mosaic cluster up"), "{err}");
    let out = mosaic(&["--socket", "/nonexistent/sock", "nodes"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach mosaicd"));
}

#[test]
fn keygen_writes_a_private_key_and_keeps_an_existing_one() {
    use std::os::unix::fs::PermissionsExt;
    let dir = empty_dir("keygen");
    let key = dir.join("k");
    let out = mosaic(&["keygen", "-o", key.to_str().unwrap()], &dir);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(mosaic_proto::ClusterKey::parse(&text).is_ok());
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = mosaic(&["keygen", "-o", key.to_str().unwrap()], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        text,
        "an existing key must be kept"
    );
}

#[test]
fn mosaicd_without_key_says_how_to_make_one() {
    let dir = empty_dir("nokey");
    let out = Command::new(env!("CARGO_BIN_EXE_mosaicd"))
        .args(["--name", "n", "--listen", "127.0.0.1:0", "--key-file"])
        .arg(dir.join("missing.key"))
        .arg("--socket")
        .arg(dir.join("s.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mosaic keygen"), "{err}");
}

#[test]
fn mosaic_syscalls_prints_the_page_kept_in_the_tree() {
    let out = mosaic(&["syscalls"], &empty_dir("syscalls"));
    assert!(out.status.success());
    let kept = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../SYSCALLS.md")).unwrap();
    assert!(out.stdout == kept, "`mosaic syscalls` is not SYSCALLS.md");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| 270 | `pselect6` | home |"), "{text}");
    assert!(text.contains("| 165 | `mount` | home, or comes home |"));
    assert!(text.contains("| 250 | `keyctl` | home |"));
}

#[test]
fn checkpoint_of_a_process_that_is_not_there_says_so() {
    let dir = empty_dir("ckpt-none");
    // A PID above the kernel's pid_max: never a process.
    let out = mosaic(
        &[
            "checkpoint",
            "99999999",
            "-o",
            dir.join("img").to_str().unwrap(),
        ],
        &dir,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no process 99999999 runs here"), "{err}");
    assert!(!dir.join("img").exists(), "no image written");
}
