//! The cluster skeleton end to end: membership, load gossip, failure
//! detection, joining at run time, goodbye, wrong keys, and a clean teardown.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use mosaic_proto::{NodeInfo, NodeState};
use mosaic_tests::{Cluster, text, wait_for};

fn row<'a>(nodes: &'a [NodeInfo], name: &str) -> Option<&'a NodeInfo> {
    nodes.iter().find(|n| n.name == name)
}

fn state_of(nodes: &[NodeInfo], name: &str) -> Option<NodeState> {
    row(nodes, name).map(|n| n.state)
}

fn load_of(nodes: &[NodeInfo], name: &str) -> f64 {
    row(nodes, name)
        .and_then(|n| n.load.as_ref())
        .map(|l| l.load)
        .unwrap_or(f64::NAN)
}

/// Every process whose namespaces are one of `inodes`, with its state.
fn processes_in(inodes: &HashSet<u64>) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if pid.parse::<u32>().is_err() {
            continue;
        }
        for kind in ["mnt", "uts", "pid"] {
            let Ok(link) = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")) else {
                continue;
            };
            let s = link.to_string_lossy();
            let ino: u64 = s[s.find('[').unwrap() + 1..s.len() - 1].parse().unwrap();
            if inodes.contains(&ino) {
                let cmd =
                    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                found.push(format!(
                    "{pid} {kind} {} [{}]",
                    cmd.replace('\0', " "),
                    stat.trim()
                ));
            }
        }
    }
    found
}

#[test]
fn three_nodes_gossip_fail_join_refuse_and_leave_nothing_behind() {
    let mut c = Cluster::up("life", 3, 17946);

    // All three alive with sane load vectors, seen from node1, within 5 s.
    let nodes = wait_for(
        "3 alive nodes with load vectors",
        Duration::from_secs(5),
        || {
            let nodes = c.nodes_seen_by("node1")?;
            let alive = nodes
                .iter()
                .filter(|n| n.state == NodeState::Alive && n.load.is_some())
                .count();
            if alive == 3 {
                Ok(nodes)
            } else {
                Err(format!("{nodes:?}"))
            }
        },
    );
    for n in &nodes {
        let l = n.load.as_ref().unwrap();
        assert!(l.cpus >= 1 && l.speed >= 1, "{n:?}");
        assert!(l.mem_total > 0 && l.mem_free <= l.mem_total, "{n:?}");
        assert!(l.load >= 0.0 && l.load < 50.0, "{n:?}");
        assert!(l.accepts_guests, "{n:?}");
        assert_eq!(n.is_self, n.name == "node1");
    }
    let addrs: Vec<&str> = nodes.iter().map(|n| n.addr.as_str()).collect();
    assert_eq!(
        addrs,
        ["127.0.0.11:17946", "127.0.0.12:17946", "127.0.0.13:17946"]
    );

    // Each node has its own hostname and its own node-local directory.
    for node in ["node1", "node2"] {
        let out = c.exec(node, &["hostname"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{node}\n"),
            "{}",
            text(&out)
        );
        let out = c.exec(node, &["cat", "/srv/mosaic-node/hostname.txt"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{node}\n"),
            "{}",
            text(&out)
        );
    }
    // Exit codes of commands inside a node come back.
    assert_eq!(
        c.exec("node2", &["sh", "-c", "exit 7"]).status.code(),
        Some(7)
    );

    // A CPU hog inside node2 raises node2's load as seen from node1, and
    // the load drops once it stops.
    let mut hog = c
        .command(&[
            "cluster",
            "exec",
            "node2",
            "--",
            "sh",
            "-c",
            "while :; do :; done",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "node2's load to rise above the others",
        Duration::from_secs(20),
        || {
            let nodes = c.nodes_seen_by("node1")?;
            let (l1, l2, l3) = (
                load_of(&nodes, "node1"),
                load_of(&nodes, "node2"),
                load_of(&nodes, "node3"),
            );
            if l2 > 0.5 && l2 > l1 + 0.3 && l2 > l3 + 0.3 {
                Ok(())
            } else {
                Err(format!("{nodes:?}"))
            }
        },
    );
    // SIGTERM to `cluster exec` reaches the command inside the node.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mosaic_proto::abi::pid(hog.id())),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_for("cluster exec to end", Duration::from_secs(10), || {
        hog.try_wait()
            .unwrap()
            .ok_or_else(|| "still running".to_string())
    });
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "exec passes on the command's death by SIGTERM"
    );
    wait_for("node2's load to drop", Duration::from_secs(15), || {
        let nodes = c.nodes_seen_by("node1")?;
        if load_of(&nodes, "node2") < 0.5 {
            Ok(())
        } else {
            Err(format!("{nodes:?}"))
        }
    });

    // Killing node3's daemon: failure detection marks it dead.
    let daemon3 = c.pid_of("node3", "daemon_pid").expect("node3 daemon pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon3),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for(
        "node3 dead in node1's table",
        Duration::from_secs(30),
        || {
            let nodes = c.nodes_seen_by("node1")?;
            if state_of(&nodes, "node3") == Some(NodeState::Dead) {
                Ok(())
            } else {
                Err(format!("{nodes:?}"))
            }
        },
    );
    assert_eq!(
        c.status().iter().find(|n| n["name"] == "node3").unwrap()["running"],
        false
    );

    // A fourth node joins at run time and sees the others.
    let out = c.mosaic(&["cluster", "add"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_for("node4 alive everywhere", Duration::from_secs(10), || {
        let from1 = c.nodes_seen_by("node1")?;
        let from4 = c.nodes_seen_by("node4")?;
        let ok = state_of(&from1, "node4") == Some(NodeState::Alive)
            && state_of(&from4, "node1") == Some(NodeState::Alive)
            && state_of(&from4, "node2") == Some(NodeState::Alive);
        if ok {
            Ok(())
        } else {
            Err(format!("{from1:?} / {from4:?}"))
        }
    });

    // A node with another key is refused, logged, and never listed.
    let other_key = c.dir.join("other.key");
    let out = c.mosaic(&["keygen", "-o", other_key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = c.mosaic(&["cluster", "add", "--key", other_key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    wait_for("a logged refusal of node5", Duration::from_secs(15), || {
        let logs = c.log("node1") + &c.log("node2") + &c.log("node4");
        if logs.contains("refused gossip from 127.0.0.15:17946") {
            Ok(())
        } else {
            Err("no refusal yet".into())
        }
    });
    // Give gossip time to spread anything it would (many rounds), then look.
    std::thread::sleep(Duration::from_secs(3));
    for node in ["node1", "node2", "node4"] {
        let nodes = c.nodes_seen_by(node).unwrap();
        assert!(
            row(&nodes, "node5").is_none(),
            "{node} lists the wrong-key node: {nodes:?}"
        );
    }
    let seen_by_5 = c.nodes_seen_by("node5").unwrap();
    let names: Vec<&str> = seen_by_5.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["node5"], "the wrong-key node learned of others");

    // A node that stops cleanly says goodbye: "left", not "dead".
    let init4 = c.pid_of("node4", "init_pid").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init4),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_for("node4 left", Duration::from_secs(10), || {
        let nodes = c.nodes_seen_by("node1")?;
        if state_of(&nodes, "node4") == Some(NodeState::Left) {
            Ok(())
        } else {
            Err(format!("{nodes:?}"))
        }
    });

    // Teardown leaves no process, namespace or mount behind.
    let status = c.status();
    let mut inodes = HashSet::new();
    for n in &status {
        for kind in ["mnt", "uts", "pid"] {
            inodes.insert(n["namespaces"][kind].as_u64().unwrap());
        }
    }
    let inits: Vec<i64> = status
        .iter()
        .map(|n| n["init_pid"].as_i64().unwrap())
        .collect();
    let out = c.down();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("local cluster down"),
        "{}",
        text(&out)
    );
    let left = processes_in(&inodes);
    assert!(
        left.is_empty(),
        "processes left in the nodes' namespaces: {left:?}"
    );
    for pid in inits {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "node init {pid} still exists"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(c.dir.to_str().unwrap()),
        "mounts left: {mounts}"
    );
    assert!(!c.socket("node1").exists());
    let out = c.mosaic(&["cluster", "status"]);
    assert!(!out.status.success(), "status after down: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no local cluster is up"),
        "{}",
        text(&out)
    );
}

#[test]
fn up_twice_is_refused_pinning_works_and_the_cli_finds_the_local_cluster() {
    let mut c = Cluster::up_with("twice", 2, 18946, &["--cpus-per-node", "1"]);
    let out = c.mosaic(&["cluster", "up", "--nodes", "2", "--port", "18946"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already up"), "{}", text(&out));
    assert_eq!(err.trim().lines().count(), 1, "a one-line reason: {err}");

    // Without --socket, `mosaic nodes` on the host talks to the local cluster.
    let nodes = wait_for("both nodes in the table", Duration::from_secs(5), || {
        let out = c.mosaic(&["nodes"]);
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && s.contains("node1") && s.contains("node2") {
            Ok(s)
        } else {
            Err(text(&out))
        }
    });
    assert!(nodes.starts_with("NODE"), "{nodes}");

    // Inside a node, `mosaic nodes` finds that node's own daemon.
    let out = c.exec(
        "node2",
        &[
            mosaic_tests::bin("mosaic").to_str().unwrap(),
            "nodes",
            "--json",
        ],
    );
    let inside: Vec<NodeInfo> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert!(row(&inside, "node2").unwrap().is_self);

    // --cpus-per-node 1: node1 runs on CPU 0, node2 on CPU 1, and says so.
    for (node, cpu) in [("node1", "0"), ("node2", "1")] {
        let out = c.exec(node, &["grep", "Cpus_allowed_list", "/proc/self/status"]);
        let s = String::from_utf8_lossy(&out.stdout);
        assert_eq!(s.split_whitespace().nth(1), Some(cpu), "{}", text(&out));
    }
    assert!(
        inside.iter().all(|n| n.load.as_ref().unwrap().cpus == 1),
        "{inside:?}"
    );

    // Unknown node and missing command give one-line reasons.
    let out = c.exec("node9", &["true"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no node named node9"),
        "{}",
        text(&out)
    );
    assert!(c.down().status.success());
}
