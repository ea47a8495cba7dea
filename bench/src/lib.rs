//! # mosaic-bench: benchmarks beside their peers
//!
//! Every benchmark here runs mosaic and the peer named in its issue (CRIU,
//! sshfs, bash, a native run) side by side in one run and reports ratios,
//! together with the floors of this machine measured in the same run
//! (loopback round trip, trap cost, page-fault rate). Tests never assert
//! times; benchmarks do not assert behaviour.
//!
//! Binaries: `ckpt-bench` (checkpoint/restore beside CRIU), `forward-bench`
//! (a forwarded system call beside its floors), `migrate-bench` (migration
//! time by memory size, and the openMosix loop native vs migrated),
//! `balance-bench` (the HOWTO job set's makespan all on one node, balanced,
//! and ideal, on 2 and 4 nodes), `make-bench` (`make -j4` in mosh kept
//! home, balanced and spread by hand), `mfs-bench` (/mfs beside sshfs and
//! the raw file system). This
//! library holds what they share: building a C workload and a local cluster.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// Builds `bench/programs/NAME.c` into `dir` with gcc -O2.
pub fn build_c(name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("programs")
        .join(format!("{name}.c"));
    let out = dir.join(name);
    if !Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()?
        .success()
    {
        bail!("gcc failed on {}", src.display());
    }
    Ok(out)
}

/// A local cluster started with the release `mosaic` next to the bench
/// binary (or in `$MOSAIC_BENCH_BIN`: a build of another commit, to compare
/// with in the same run), stopped when dropped.
pub struct LocalCluster {
    pub mosaic: PathBuf,
    pub dir: PathBuf,
}

impl LocalCluster {
    /// Starts `nodes` nodes in `dir` on `port`, with more `cluster up` options.
    pub fn up(dir: &Path, nodes: u32, port: u16, extra: &[&str]) -> anyhow::Result<LocalCluster> {
        let bin = match std::env::var_os("MOSAIC_BENCH_BIN") {
            Some(dir) => PathBuf::from(dir),
            None => std::env::current_exe()?
                .parent()
                .context("target dir")?
                .to_owned(),
        };
        let mosaic = bin.join("mosaic");
        if !mosaic.exists() {
            bail!(
                "{} is missing: run `cargo build --release` first",
                mosaic.display()
            );
        }
        let c = LocalCluster {
            mosaic,
            dir: dir.to_owned(),
        };
        let (nodes, port) = (nodes.to_string(), port.to_string());
        let mut args = vec!["cluster", "up", "--nodes", &nodes, "--port", &port];
        args.extend_from_slice(extra);
        let up = c.cmd(&args).output()?;
        if !up.status.success() {
            bail!("cluster up failed: {}", String::from_utf8_lossy(&up.stderr));
        }
        Ok(c)
    }

    /// A `mosaic` command aimed at this cluster.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.mosaic);
        c.env("MOSAIC_CLUSTER_DIR", &self.dir)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Starts `args` in node1 with piped stdout; the program must print
    /// "pid N" and "waiting" first. Returns it, its stdout after those two
    /// lines, and N (its PID in node1).
    pub fn start_in_node1(
        &self,
        args: &[&str],
    ) -> anyhow::Result<(
        std::process::Child,
        std::io::BufReader<std::process::ChildStdout>,
        String,
    )> {
        use std::io::BufRead;
        let mut all = vec!["cluster", "exec", "node1", "--"];
        all.extend_from_slice(args);
        let mut run = self.cmd(&all).stdout(Stdio::piped()).spawn()?;
        let mut out = std::io::BufReader::new(run.stdout.take().context("stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        let pid = line
            .trim()
            .strip_prefix("pid ")
            .context("no pid line")?
            .to_string();
        line.clear();
        out.read_line(&mut line)?;
        if line != "waiting\n" {
            bail!("expected `waiting`, got {line:?}");
        }
        Ok((run, out, pid))
    }

    /// `mosaic migrate PID NODE` run inside node1.
    pub fn migrate(&self, pid: &str, node: &str) -> anyhow::Result<()> {
        self.in_node1(&["migrate", pid, node])
    }

    /// `mosaic node ACTION` run inside node1 (`stay`, `nostay`, ...).
    pub fn node1_control(&self, action: &str) -> anyhow::Result<()> {
        self.in_node1(&["node", action])
    }

    /// `mosaic lock PID` run inside node1: no balancer moves it.
    pub fn lock(&self, pid: &str) -> anyhow::Result<()> {
        self.in_node1(&["lock", pid])
    }

    fn in_node1(&self, args: &[&str]) -> anyhow::Result<()> {
        let mosaic = self.mosaic.to_str().unwrap_or("mosaic");
        let mut all = vec!["cluster", "exec", "node1", "--", mosaic];
        all.extend_from_slice(args);
        let r = self.cmd(&all).output()?;
        if !r.status.success() {
            bail!(
                "mosaic {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&r.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.cmd(&["cluster", "down"]).output();
    }
}
