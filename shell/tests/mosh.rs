//! `mosh` as a program (this test also makes `cargo test` build it for the
//! end-to-end tests in tests/).

use std::process::Command;

#[test]
fn mosh_c_computes_and_exits_with_the_status_of_its_last_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_mosh"))
        .args(["-c", "echo $((6 * 7)) \"$0\" \"$1\"; exit 9", "zero", "one"])
        .env_remove("MOSAIC_SOCKET")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42 zero one\n");
    assert_eq!(out.status.code(), Some(9));
}
