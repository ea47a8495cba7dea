//! Every node serves its files to its peers over 9P2000.L on the cluster's
//! authenticated channel: a client holding the key reads node2's own files
//! and writes into node3's; a client without it is refused.

use mosaic_tests::Cluster;

#[test]
fn a_peer_reads_and_writes_another_nodes_files_and_a_stranger_is_refused() {
    let mut c = Cluster::up("files", 3, 44946);
    let key = mosaic_node::daemon::read_key(&c.dir.join("cluster.key")).unwrap();
    let nodes = c.nodes_seen_by("node1").unwrap();
    let addr = |name: &str| -> std::net::SocketAddr {
        nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("{name} in {nodes:?}"))
            .addr
            .parse()
            .unwrap()
    };
    // node2's own file, as node2 sees it.
    let mut n2 = mosaic_node::files::connect(addr("node2"), &key).unwrap();
    let root = n2.attach("root").unwrap();
    let f = n2.walk_path(root, "srv/mosaic-node/hostname.txt").unwrap();
    n2.open(f, libc::O_RDONLY).unwrap();
    let text = String::from_utf8(n2.read_all(f).unwrap()).unwrap();
    assert_eq!(text.trim(), "node2");
    let srv = n2.walk_path(root, "srv/mosaic-node").unwrap();
    let listing = n2.list(srv).unwrap();
    assert!(
        listing.iter().any(|e| e.name == "hostname.txt"),
        "{listing:?}"
    );
    // A file written through node3's server lands on node3.
    let mut n3 = mosaic_node::files::connect(addr("node3"), &key).unwrap();
    let root3 = n3.attach("root").unwrap();
    let dir = n3.walk_path(root3, "srv/mosaic-node").unwrap();
    n3.create(dir, "from-a-peer.txt", libc::O_WRONLY, 0o644)
        .unwrap();
    n3.write(dir, 0, b"written over 9P\n").unwrap();
    n3.clunk(dir).unwrap();
    assert_eq!(
        std::fs::read_to_string(c.dir.join("node3/srv/from-a-peer.txt")).unwrap(),
        "written over 9P\n"
    );
    // Without the cluster key: no session at all.
    let stranger = mosaic_proto::ClusterKey::from_bytes([7; 32]);
    assert!(mosaic_node::files::connect(addr("node2"), &stranger).is_err());
    c.down();
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `/mfs` on a 3-node cluster, as a user of node1 sees it: another node's
/// files, a write that lands on node3, nodes appearing and dying, a
/// migrated process in `/mfs/proc`, and a guest's `/mfs/home`.
#[test]
fn mfs_shows_every_nodes_files_and_processes() {
    use mosaic_tests::{text, wait_for};
    use std::time::Duration;
    let mut c = Cluster::up("mfs", 3, 45946);
    let mosaic = mosaic_tests::bin("mosaic");
    let m = mosaic.display();
    let sh = |node: &str, script: &str| c.exec(node, &["sh", "-c", script]);

    // node2's own file, read from node1.
    let out = sh("node1", "cat /mfs/node2/srv/mosaic-node/hostname.txt");
    assert_eq!(stdout(&out).trim(), "node2", "{}", text(&out));
    // A file written through /mfs/node3 lands on node3.
    let out = sh(
        "node1",
        "echo 'from node1' > /mfs/node3/srv/mosaic-node/note.txt && mkdir /mfs/node3/srv/mosaic-node/d \
         && mv /mfs/node3/srv/mosaic-node/note.txt /mfs/node3/srv/mosaic-node/d/",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(c.dir.join("node3/srv/d/note.txt")).unwrap(),
        "from node1\n"
    );
    // here, home, and the status command.
    let out = sh(
        "node2",
        &format!("readlink /mfs/here /mfs/home; {m} mfs status"),
    );
    let t = stdout(&out);
    assert!(
        t.starts_with("node2\nnode2\n/mfs: mounted at /mfs\nnodes: node1 node2 node3\n"),
        "{t}"
    );

    // A migrated process shows in /mfs/proc with the node it runs on now,
    // from any node.
    let out = sh(
        "node1",
        &format!(
            "{m} run --node node2 -- mawk 'BEGIN {{ while (1) n++ }}' >/dev/null 2>&1 & echo $!"
        ),
    );
    assert!(out.status.success(), "{}", text(&out));
    let (pid_dir, table) = wait_for("the process in /mfs/proc", Duration::from_secs(20), || {
        let out = sh(
            "node3",
            "for d in /mfs/proc/node1/[0-9]*; do [ -d $d ] && echo $d $(cat $d/where $d/home $d/status); done; cat /mfs/proc/ps",
        );
        let t = stdout(&out);
        let line = t
            .lines()
            .find(|l| l.starts_with("/mfs/proc/node1/") && l.contains(" node2 node1 "))
            .ok_or(t.clone())?;
        Ok((line.split(' ').next().unwrap().to_string(), t))
    });
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("node1 ") && l.contains(" node2 ") && l.contains("mawk")),
        "{table}"
    );
    let out = sh("node1", &format!("cat {pid_dir}/cmdline {pid_dir}/lock"));
    assert_eq!(
        stdout(&out),
        "mawk BEGIN { while (1) n++ }\n0\n",
        "{}",
        text(&out)
    );
    let pid = pid_dir.rsplit('/').next().unwrap();
    let out = c.exec("node1", &[mosaic.to_str().unwrap(), "migrate", pid, "home"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = sh("node1", &format!("cat {pid_dir}/where; kill {pid}"));
    assert_eq!(stdout(&out).trim(), "node1", "{}", text(&out));

    // A guest's /mfs/home is its home node's files.
    let out = sh(
        "node1",
        &format!(
            "{m} run --node node3 -- sh -c 'sleep 0.5; cat /mfs/home/srv/mosaic-node/hostname.txt; readlink /mfs/home'"
        ),
    );
    assert_eq!(stdout(&out), "node1\nnode1\n", "{}", text(&out));
    assert!(c.log("node3").contains("guest"), "{}", c.log("node3"));

    // Nodes appear and die in /mfs.
    let out = c.mosaic(&["cluster", "add"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_for("node4 in /mfs", Duration::from_secs(15), || {
        let t = stdout(&sh("node1", "ls /mfs"));
        if t.split_whitespace().any(|n| n == "node4") {
            Ok(())
        } else {
            Err(t)
        }
    });
    let out = sh("node1", "cat /mfs/node4/srv/mosaic-node/hostname.txt");
    assert_eq!(stdout(&out).trim(), "node4", "{}", text(&out));
    let daemon3 = c.pid_of("node3", "daemon_pid").expect("node3 daemon pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon3),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("node3 gone from /mfs", Duration::from_secs(30), || {
        let t = stdout(&sh("node1", "ls /mfs"));
        if t.split_whitespace().any(|n| n == "node3") {
            Err(t)
        } else {
            Ok(())
        }
    });
    let out = sh("node1", "cat /mfs/node3/srv/mosaic-node/hostname.txt");
    assert!(!out.status.success(), "{}", text(&out));
    c.down();
}

/// The PID on this machine of process `pid` of node1.
fn host_pid_of(c: &Cluster, pid: i64) -> i32 {
    let init = c.pid_of("node1", "init_pid").expect("node1's init");
    // Find the host process whose innermost PID (NSpid's last) is `pid`
    // in node1's PID namespace.
    let ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{p}/ns/pid"))
            .ok()
            .as_ref()
            != Some(&ns)
        {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let inner = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|v| v.split_whitespace().last())
            .and_then(|v| v.parse::<i64>().ok());
        if inner == Some(pid) {
            return p;
        }
    }
    panic!("no process {pid} in node1")
}

/// The image bytes of each migration in a node's log, in order, with
/// whether the pages of its files travelled too.
fn migrations_in(log: &str) -> Vec<(u64, bool)> {
    log.lines()
        .filter(|l| l.contains("migrated; the process is a placeholder now"))
        .filter_map(|l| {
            let field = |name: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .map(str::to_string)
            };
            Some((
                field("image_bytes=")?.parse().ok()?,
                field("embedded_files=")? == "true",
            ))
        })
        .collect()
}

/// A process whose binary exists only on its home node migrates with its
/// binary and libraries mapped where it lands (the binary through
/// `/mfs/node1` on node2, its pages fetched when touched), prints what it
/// prints natively, and comes home again; without `/mfs` on the target
/// the same migration must carry every page of its files, at least 5x the
/// bytes.
#[test]
fn a_guest_maps_its_home_only_binary_through_mfs_and_sends_5x_fewer_bytes() {
    use mosaic_tests::text;
    let mut c = Cluster::up("mfs-lazy", 2, 46946);
    let mosaic = mosaic_tests::bin("mosaic");
    let m = mosaic.display();
    std::fs::copy("/usr/bin/mawk", c.dir.join("node1/srv/mawk")).unwrap();
    // node2 has no /srv/mosaic-node/mawk: it maps node1's through /mfs.
    assert!(!c.dir.join("node2/srv/mawk").exists());
    let prog = "BEGIN { for (i = 0; i < 20000000; i++) s += i % 7; printf \"%d\\n\", s }";
    let native = c.exec("node1", &["/srv/mosaic-node/mawk", prog]);
    assert!(native.status.success(), "{}", text(&native));
    // Moved once it runs (its libraries mapped), then waited for.
    let migrated = |c: &Cluster| {
        let out = c.exec(
            "node1",
            &[
                "sh",
                "-c",
                &format!(
                    "/srv/mosaic-node/mawk '{prog}' & p=$!; sleep 0.3; {m} migrate $p node2 >&2; wait $p"
                ),
            ],
        );
        assert_eq!(stdout(&out), stdout(&native), "{}", text(&out));
        migrations_in(&c.log("node1"))
    };
    let lazy = migrated(&c);
    assert_eq!(lazy.len(), 1, "{}", c.log("node1"));
    assert!(!lazy[0].1, "{lazy:?}");
    // Such a guest comes home again: its binary goes home under its own
    // path and is mapped from the file there.
    let out = c.exec(
        "node1",
        &[
            "sh",
            "-c",
            &format!(
                "/srv/mosaic-node/mawk 'BEGIN {{ while (1) n++ }}' >/dev/null 2>&1 & p=$!; sleep 0.3; {m} migrate $p node2 >&2 && echo $p"
            ),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let spinner: i64 = stdout(&out).trim().parse().unwrap();
    let home = c.exec(
        "node1",
        &[
            mosaic.to_str().unwrap(),
            "migrate",
            &spinner.to_string(),
            "home",
        ],
    );
    assert!(home.status.success(), "{}\n{}", text(&home), c.log("node1"));
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", host_pid_of(&c, spinner)))
        .unwrap_or_default();
    assert!(
        maps.contains("/srv/mosaic-node/mawk") && !maps.contains("/mfs/"),
        "at home it maps its own files, not /mfs: {maps}"
    );
    let _ = c.exec("node1", &["kill", &spinner.to_string()]);
    // Without /mfs on node2, the binary cannot be mapped there: the
    // migration is made again with the files' pages in the image.
    let out = c.exec("node2", &["umount", "-l", "/mfs"]);
    assert!(out.status.success(), "{}", text(&out));
    let all = migrated(&c);
    // The lazy one, the spinner, and this one (its pages in the image).
    assert_eq!(all.len(), 3, "{}", c.log("node1"));
    assert!(all[2].1, "{all:?}");
    assert!(
        c.log("node1")
            .contains("sending the pages of its mapped files too")
    );
    let (with, without) = (all[0].0, all[2].0);
    println!("image bytes: {with} with /mfs, {without} without");
    assert!(
        without >= 5 * with,
        "{with} bytes with /mfs, {without} without: less than 5x"
    );
    c.down();
}
