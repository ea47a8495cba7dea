//! `mosaic-9p` as a program (this test also makes `cargo test` build it
//! for the end-to-end tests in tests/).

use std::process::Command;

#[test]
fn mosaic_9p_refuses_to_serve_beyond_this_machine() {
    let out = Command::new(env!("CARGO_BIN_EXE_mosaic-9p"))
        .args(["--listen", "0.0.0.0:5650", "/"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a loopback address"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mosaic_9p_serves_a_directory_to_our_client() {
    let dir = std::env::temp_dir().join(format!("mosaic-9p-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), "served\n").unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_mosaic-9p"))
        .args(["--listen", "127.0.0.1:45651"])
        .arg(&dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stream = (0..100)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::net::TcpStream::connect("127.0.0.1:45651").ok()
        })
        .expect("mosaic-9p listens");
    let mut c =
        mosaic_ssi_fs::client::Client::new(mosaic_ssi_fs::client::Stream(stream), 65536).unwrap();
    let root = c.attach("root").unwrap();
    let f = c.walk_path(root, "f").unwrap();
    c.open(f, libc::O_RDONLY).unwrap();
    let got = c.read_all(f).unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(got, b"served\n");
}
