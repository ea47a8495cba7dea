//! Where mosh runs: on a mosaic node (its daemon answers on the node's
//! control socket), or, on a first run with no node on this machine, in a
//! local cluster that mosh brings up (as `mosaic cluster up --nodes 2`)
//! and enters (as `mosaic cluster exec node1 -- mosh`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Set in a mosh started inside a local cluster by [`enter_local_cluster`]:
/// where the user was, so that the shell starts there.
pub const START_DIR: &str = "MOSH_START_DIR";
/// Set in the same mosh: it must not try again.
const ENTERED: &str = "MOSH_ENTERED_CLUSTER";

/// The control socket of this node's daemon, if one answers: `$MOSAIC_SOCKET`
/// or the default one.
pub fn node_socket() -> Option<PathBuf> {
    let socket = std::env::var_os("MOSAIC_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(mosaic_client::DEFAULT_SOCKET));
    std::os::unix::net::UnixStream::connect(&socket)
        .is_ok()
        .then_some(socket)
}

/// The local cluster's state directory.
fn cluster_dir() -> PathBuf {
    std::env::var_os("MOSAIC_CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(mosaic_client::DEFAULT_CLUSTER_DIR))
}

/// Whether a local cluster's first node runs in `dir` (its daemon answers).
fn local_cluster_runs(dir: &Path) -> bool {
    mosaic_client::local_sockets(dir)
        .first()
        .and_then(|s| mosaic_client::Client::connect(s).ok())
        .is_some_and(|mut c| c.status().is_ok())
}

/// The first run: brings up a local 2-node cluster if none runs, then
/// replaces this process with mosh inside its node1 (same arguments, same
/// terminal). Returns only on error.
pub fn enter_local_cluster(mosaic: &Path, args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(ENTERED).is_some() {
        bail!(
            "inside the local cluster, but node1's daemon does not answer on {}: see `mosaic cluster status`",
            mosaic_client::DEFAULT_SOCKET
        );
    }
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "no mosaic node on this machine: start mosaicd (see README), or run mosh as root once to get a local 2-node cluster"
        );
    }
    let dir = cluster_dir();
    if local_cluster_runs(&dir) {
        eprintln!(
            "mosh: entering the local cluster in {} (node1)",
            dir.display()
        );
    } else {
        eprintln!(
            "mosh: no mosaic node here: starting a local 2-node cluster (mosaic cluster up --nodes 2; `mosaic cluster down` stops it)"
        );
        let up = std::process::Command::new(mosaic)
            .args(["cluster", "up", "--nodes", "2", "--state-dir"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()
            .with_context(|| format!("cannot run {}", mosaic.display()))?;
        if !up.success() {
            bail!("the local cluster did not start (above); `mosaic cluster status` tells more");
        }
    }
    let me = std::env::current_exe().context("cannot find mosh itself")?;
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let err = std::process::Command::new(mosaic)
        .args(["cluster", "exec", "--state-dir"])
        .arg(&dir)
        .args(["node1", "--"])
        .arg(me)
        .args(args)
        .env(START_DIR, here)
        .env(ENTERED, "1")
        .exec();
    Err(err).with_context(|| format!("cannot run {}", mosaic.display()))
}
