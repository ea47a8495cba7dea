//! `mosaic mon` in a real terminal (tmux): one bar per node, `q` quits.

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
                && ["node1", "node2", "node3"]
                    .iter()
                    .all(|n| s.matches(n).count() >= 2);
            if ok { Ok(s) } else { Err(s) }
        },
    );
    assert!(screen.contains("load per CPU"), "{screen}");
    assert!(screen.contains("memory used"), "{screen}");
    // Each node's memory bar carries its value.
    assert!(screen.matches('%').count() >= 3, "{screen}");
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
