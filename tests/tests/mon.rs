//! `mosaic mon` in a real terminal (tmux): one bar per node in each of
//! mosmon's views, the process pane, `q` quits.

use std::time::Duration;

use mosaic_tests::{Cluster, bin, tmux, wait_for};

#[test]
fn mon_renders_one_bar_per_node_under_tmux_and_quits_on_q() {
    let mut c = Cluster::up("mon", 3, 19946);
    let session = format!("mosaic-mon-{}", std::process::id());
    let cmd = format!(
        "MOSAIC_CLUSTER_DIR={} {} mon",
        c.dir.display(),
        bin("mosaic").display()
    );
    let out = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "100",
        "-y",
        "30",
        &cmd,
    ]);
    assert!(out.status.success(), "{}", mosaic_tests::text(&out));
    let screen = wait_for(
        "mon to show all three nodes",
        Duration::from_secs(10),
        || {
            let out = tmux(&["capture-pane", "-p", "-t", &session]);
            let s = String::from_utf8_lossy(&out.stdout).to_string();
            let ok = s.contains("3 nodes, 3 alive")
                && ["node1", "node2", "node3"].iter().all(|n| s.contains(n));
            if ok { Ok(s) } else { Err(s) }
        },
    );
    assert!(screen.contains("load per CPU"), "{screen}");
    // mosmon's views, each by its key, with a bar per node (memory and
    // speed are never zero: their bars carry their values).
    let capture = || {
        let out = tmux(&["capture-pane", "-p", "-t", &session]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    for (key, title, value) in [
        ("m", "memory used", "%"),
        ("s", "CPU speed", "1000"),
        ("u", "CPU utilization", "node"),
        ("l", "load per CPU", "node"),
    ] {
        tmux(&["send-keys", "-t", &session, key]);
        wait_for(&format!("the {title} view"), Duration::from_secs(5), || {
            let s = capture();
            let chart: String = s.lines().take(18).collect::<Vec<_>>().join("\n");
            (chart.contains(title) && chart.matches(value).count() >= 3)
                .then_some(())
                .ok_or(s)
        });
    }
    // The process pane: a process moved to node3 shows there.
    let mosaic = bin("mosaic");
    let job = c
        .command(&[
            "cluster",
            "exec",
            "node1",
            "--",
            mosaic.to_str().unwrap(),
            "run",
            "--lock",
            "--",
            "sh",
            "-c",
            "echo $$ > /srv/mosaic-node/job.pid; exec sleep 60",
        ])
        .spawn()
        .unwrap();
    let pid_file = c.dir.join("node1/srv/job.pid");
    let pid = mosaic_tests::wait_for_pid_file("the job's pid", &pid_file);
    c.migrate(pid, "node3");
    wait_for(
        "the job on node3 in the pane",
        Duration::from_secs(15),
        || {
            let s = capture();
            s.lines()
                .any(|l| {
                    l.contains(&pid.to_string())
                        && l.contains("node1")
                        && l.contains("node3")
                        && l.contains("sleep")
                })
                .then_some(())
                .ok_or(s)
        },
    );
    tmux(&["send-keys", "-t", &session, "p"]);
    wait_for("the pane to close on p", Duration::from_secs(5), || {
        let s = capture();
        (!s.contains("HOME PID")).then_some(()).ok_or(s)
    });
    let mut job = job;
    let _ = job.kill();
    let _ = job.wait();
    tmux(&["send-keys", "-t", &session, "q"]);
    wait_for("mon to quit on q", Duration::from_secs(5), || {
        if tmux(&["has-session", "-t", &session]).status.success() {
            Err("still running".into())
        } else {
            Ok(())
        }
    });
    c.down();
}
