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
