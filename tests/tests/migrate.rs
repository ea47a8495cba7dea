//! Migration end to end on a local cluster: a process started on node1 and
//! moved to node2 mid-run keeps its home view of the world.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mosaic_tests::{Cluster, bin, text, wait_for};

fn build(name: &str, dir: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrate-programs")
        .join(format!("{name}.c"));
    let out = dir.join(name);
    let r = Command::new("gcc")
        .args(["-O1", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));
    out.to_string_lossy().into_owned()
}

/// Host PIDs of processes whose uid is `uid` and whose cmdline starts with `prog`.
fn processes_of(uid: u32, prog: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            status.lines().any(|l| {
                l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(&uid.to_string())
            }) && cmd.starts_with(prog)
        })
        .collect()
}

#[test]
fn a_migrated_process_keeps_its_home_view() {
    let mut c = Cluster::up("migrate", 2, 20946);
    let prog = build("transparency", &c.dir);
    let _ = std::fs::remove_file(c.dir.join("node1/srv/written.txt"));
    let mut run = c
        .command(&["cluster", "exec", "node1", "--", &prog])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let home_pid: i32 = first.trim().strip_prefix("pid ").unwrap().parse().unwrap();
    let mut waiting = String::new();
    out.read_line(&mut waiting).unwrap();
    assert_eq!(waiting, "waiting\n");

    let r = c.exec(
        "node1",
        &[
            bin("mosaic").to_str().unwrap(),
            "migrate",
            &home_pid.to_string(),
            "node2",
        ],
    );
    assert!(r.status.success(), "migrate: {}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stdout).contains("now runs on node2"),
        "{}",
        text(&r)
    );
    // The guest runs on node2 as the unprivileged guest user.
    let guests = processes_of(65534, &prog);
    assert_eq!(guests.len(), 1, "exactly one guest: {guests:?}");
    let guest_ns = std::fs::read_link(format!("/proc/{}/ns/pid", guests[0])).unwrap();
    let node2_init = c.pid_of("node2", "init_pid").unwrap();
    assert_eq!(
        guest_ns,
        std::fs::read_link(format!("/proc/{node2_init}/ns/pid")).unwrap(),
        "guest not in node2"
    );

    let status = wait_for(
        "the migrated process to finish",
        Duration::from_secs(60),
        || run.try_wait().unwrap().ok_or_else(|| "running".to_string()),
    );
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    run.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(
        status.code(),
        Some(42),
        "exit code reaches the parent; stdout: {rest} stderr: {err}"
    );
    let lines: Vec<&str> = rest.lines().collect();
    assert_eq!(lines[0], "hostname node1", "{rest}");
    assert_eq!(lines[1], "file node1", "{rest}");
    assert_eq!(lines[2], format!("pid {home_pid} ppid 0"), "{rest}");
    assert_eq!(lines[3], "readv node1", "{rest}");
    assert!(lines[4].starts_with("sum "), "{rest}");
    assert!(!rest.contains("FAIL"), "{rest}");
    assert_eq!(err, "to stderr\n");
    assert_eq!(
        std::fs::read_to_string(c.dir.join("node1/srv/written.txt")).unwrap(),
        "hello from a guest\n",
        "the file is written at home"
    );
    assert!(!c.dir.join("node2/srv/written.txt").exists());
    assert!(processes_of(65534, &prog).is_empty(), "no stray guest");
    c.down();
}
