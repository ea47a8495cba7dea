//! `mosaic`: the admin command of a mosaic cluster.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use mosaic_client::{Client, Moved};
use mosaic_node::local;
use mosaic_proto::NodeInfo;

/// Admin command of a mosaic cluster: see the nodes, watch them, run a local cluster.
#[derive(Parser, Debug)]
#[command(name = "mosaic", version, about)]
struct Cli {
    /// Control socket of the daemon to ask (default: /run/mosaic/mosaicd.sock,
    /// else the local cluster's first node).
    #[arg(long, global = true, env = "MOSAIC_SOCKET")]
    socket: Option<PathBuf>,
    /// State directory of the local cluster.
    #[arg(long, global = true, env = "MOSAIC_CLUSTER_DIR", default_value = mosaic_node::DEFAULT_CLUSTER_DIR)]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the nodes of the cluster with their load.
    Nodes {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Live view of every node's load and memory (q quits).
    Mon,
    /// Create a new cluster key file (copy it to every node).
    Keygen {
        /// Where to write the key.
        #[arg(long, short, default_value = "/etc/mosaic/cluster.key")]
        output: PathBuf,
        /// Overwrite an existing key file.
        #[arg(long)]
        force: bool,
    },
    /// List the managed processes of the cluster: where each runs, its
    /// state, CPU share, memory, lock, and why it cannot move.
    Ps {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Become a command (exec in place, as `nice` does: its PID, stdin,
    /// stdout and exit status are this one's), managed by mosaic, moved to
    /// another node once it runs.
    Run {
        /// Send it to this node.
        #[arg(long, conflicts_with = "best")]
        node: Option<String>,
        /// Send it to the least loaded other node.
        #[arg(long)]
        best: bool,
        /// Lock it: never moved automatically (by the balancer); `mosaic
        /// migrate` still moves it.
        #[arg(long)]
        lock: bool,
        /// It computes: the balancer may move it as soon as it starts
        /// (openMosix's `mosrun -c`).
        #[arg(long, conflicts_with = "io_bound")]
        cpu_bound: bool,
        /// It does I/O: it stays home, near its files (`mosrun -i`).
        #[arg(long)]
        io_bound: bool,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Move a process of this node to another node now, on to a third, or
    /// back home.
    Migrate {
        /// The process (its PID on this node, its home).
        pid: i32,
        /// The node to move it to, `home`, or `balance` (where the
        /// balancer's rule says it runs best now).
        node: String,
    },
    /// Lock a process of this node: the balancer never moves it.
    Lock {
        /// The process (its PID on this node, its home).
        pid: i32,
    },
    /// Unlock a process: the balancer may move it again.
    Unlock {
        /// The process (its PID on this node, its home).
        pid: i32,
    },
    /// Node controls, as openMosix's mosctl: without an action, show them.
    Node {
        #[command(subcommand)]
        action: Option<NodeCmd>,
    },
    /// Save a running process to an image file.
    Checkpoint {
        /// The process.
        pid: i32,
        /// The image file to write.
        #[arg(long, short)]
        output: PathBuf,
        /// What happens to the process afterwards.
        #[arg(long, value_enum, default_value = "leave-running")]
        then: mosaic_node::checkpoint::After,
        /// Shorthand for --then kill.
        #[arg(long, conflicts_with_all = ["then", "stop", "leave_running"])]
        kill: bool,
        /// Shorthand for --then leave-running (the default).
        #[arg(long, conflicts_with_all = ["then", "stop"])]
        leave_running: bool,
        /// Shorthand for --then stop.
        #[arg(long, conflicts_with = "then")]
        stop: bool,
        /// Carry the pages of mapped files too (the image then needs no file).
        #[arg(long)]
        embed_files: bool,
    },
    /// Bring a process back from an image file and wait for it.
    Restore {
        /// The image file.
        image: PathBuf,
        /// `inherit`: give the process this command's stdin, stdout and stderr.
        #[arg(long, value_enum, default_value = "image")]
        stdio: StdioArg,
    },
    /// The address of this node's web view (charts of every node, the
    /// process table, migrations; drag a process onto a node to move it),
    /// with the token that opens it.
    Web,
    /// This node's /mfs: every node's files, /mfs/home, /mfs/proc.
    Mfs {
        #[command(subcommand)]
        command: MfsCommand,
    },
    /// A whole cluster on this machine, one namespaced node per mosaicd.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// What a migrated process can do, system call by system call: where
    /// each runs (guest, home, comes home) and what it misses (Markdown).
    Syscalls,
    /// Print the completion script of `mosaic` for a shell (e.g. `mosaic
    /// completions bash > /etc/bash_completion.d/mosaic`; mosh loads it
    /// itself).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages of `mosaic` and its commands (mosaic.1,
    /// mosaic-ps.1, ...) into a directory.
    Man {
        /// Where (a `man1` directory).
        #[arg(long, default_value = "/usr/local/share/man/man1")]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum MfsCommand {
    /// Where /mfs is mounted (or why not), the nodes it shows, and its
    /// traffic.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum NodeCmd {
    /// This node's processes stay here: the balancer moves none of them.
    Stay,
    /// Undo `stay`.
    #[command(name = "nostay")]
    NoStay,
    /// Accept no new guests.
    Block,
    /// Undo `block`.
    #[command(name = "noblock")]
    NoBlock,
    /// Send every guest home (and accept no new ones); waits until they left.
    Expel,
    /// Call every process of this node home; waits until they are back.
    Bring,
    /// Stop publishing this node's load: the others send it no work.
    Quiet,
    /// Undo `quiet`.
    #[command(name = "noquiet")]
    NoQuiet,
    /// Publish this CPU speed (relative; 1000 is the reference).
    Speed {
        /// The speed.
        speed: u32,
    },
}

impl NodeCmd {
    fn action(self) -> mosaic_proto::control::NodeAction {
        use mosaic_proto::control::NodeAction as A;
        match self {
            NodeCmd::Stay => A::Stay,
            NodeCmd::NoStay => A::NoStay,
            NodeCmd::Block => A::Block,
            NodeCmd::NoBlock => A::NoBlock,
            NodeCmd::Expel => A::Expel,
            NodeCmd::Bring => A::Bring,
            NodeCmd::Quiet => A::Quiet,
            NodeCmd::NoQuiet => A::NoQuiet,
            NodeCmd::Speed { speed } => A::Speed { speed },
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum StdioArg {
    /// Reopen the files the image had.
    Image,
    /// Use this command's own stdin, stdout, stderr.
    Inherit,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Start N nodes (node1..N at 127.0.0.11..) on this machine.
    Up {
        /// How many nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// Pin each node to its own K CPUs (default: the machine's CPUs
        /// divided among the nodes, at least one each; nodes beyond the
        /// CPUs share them round-robin).
        #[arg(long)]
        cpus_per_node: Option<usize>,
        /// Memory each node offers, in MiB (default: the machine's); its
        /// free memory is then this minus what its processes hold.
        #[arg(long, value_name = "MIB")]
        memory_per_node: Option<u64>,
        /// Gossip port of every node.
        #[arg(long, default_value_t = mosaic_node::DEFAULT_GOSSIP_PORT)]
        port: u16,
    },
    /// Add one node to the running local cluster.
    Add {
        /// Use this key file instead of the cluster's (to try a wrong key).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Memory the new node offers, in MiB (default: the machine's).
        #[arg(long, value_name = "MIB")]
        memory: Option<u64>,
    },
    /// Stop every node and remove what `up` created.
    Down,
    /// Run a command inside a node (its namespaces, its control socket).
    Exec {
        /// Node name, e.g. node2.
        node: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Show the nodes' processes and whether they run.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    #[command(name = "__init", hide = true)]
    Init {
        #[arg(long)]
        name: String,
        #[arg(long)]
        node_dir: PathBuf,
        #[arg(long, value_delimiter = ',')]
        cpus: Option<Vec<usize>>,
    },
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MOSAIC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("mosaic: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let dir = cli.state_dir.as_path();
    let socket = cli.socket.as_deref();
    match cli.command {
        Command::Nodes { json } => {
            let nodes = fetch_nodes(socket, dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&nodes)?);
            } else {
                print!("{}", nodes_table(&nodes));
            }
        }
        Command::Mon => {
            let mut client = Client::find(socket, dir)?;
            mosaic_node::mon::run(|| {
                let fetched = client.nodes().and_then(|n| Ok((n, client.ps()?)));
                if fetched.is_err()
                    && let Ok(c) = Client::find(socket, dir)
                {
                    client = c;
                }
                fetched.map_err(|e| format!("{e:#}"))
            })?;
        }
        Command::Keygen { output, force } => keygen(&output, force)?,
        Command::Syscalls => print!("{}", mosaic_proto::syscalls::listing()),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            // Into memory first: clap_complete panics on a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "mosaic", &mut script);
            let _ = std::io::stdout().write_all(&script);
        }
        Command::Man { dir } => {
            use clap::CommandFactory;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
            println!("man pages of mosaic written in {}", dir.display());
        }
        Command::Ps { json } => {
            let mut client = Client::find(socket, dir)?;
            let procs = client.ps()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&procs)?);
            } else {
                println!(
                    "{:>8} {:<8} {:<8} {:>9} {:<10} {:>6} {:>9} {:>4} {:<4}  COMMAND",
                    "HOME PID",
                    "HOME",
                    "WHERE",
                    "PID THERE",
                    "STATE",
                    "%CPU",
                    "MEM KiB",
                    "THR",
                    "LOCK"
                );
                for p in procs {
                    println!(
                        "{:>8} {:<8} {:<8} {:>9} {:<10} {:>6.1} {:>9} {:>4} {:<4}  {}{}",
                        p.home_pid,
                        p.home,
                        p.node,
                        p.guest_pid,
                        p.state,
                        p.cpu,
                        p.mem_kb,
                        p.threads.max(1),
                        if p.lock { "yes" } else { "" },
                        p.cmd,
                        if p.cantmove.is_empty() {
                            String::new()
                        } else {
                            format!("  (cannot move: {})", p.cantmove)
                        }
                    );
                }
            }
        }
        Command::Run {
            node,
            best,
            lock,
            cpu_bound,
            io_bound,
            command,
        } => {
            use mosaic_proto::control::Hint;
            let hint = match (cpu_bound, io_bound) {
                (true, _) => Hint::CpuBound,
                (_, true) => Hint::IoBound,
                _ => Hint::None,
            };
            return run_command(socket, dir, node, best, (lock, hint), &command);
        }
        Command::Node { action } => node_control(socket, dir, action)?,
        Command::Web => {
            let url = Client::find(socket, dir)?.web()?;
            println!("{url}");
        }
        Command::Mfs {
            command: MfsCommand::Status { json },
        } => {
            let mut client = Client::find(socket, dir)?;
            let status = client.mfs()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", mfs_status_text(&status));
            }
            if !status.mounted {
                return Ok(1);
            }
        }
        Command::Lock { pid } | Command::Unlock { pid } => {
            let lock = matches!(cli.command, Command::Lock { .. });
            let mut client = Client::find(socket, dir)?;
            let pid = client.manage(pid, lock, Default::default())?;
            println!("process {pid} {}", if lock { "locked" } else { "unlocked" });
        }
        Command::Migrate { pid, node } => {
            let mut client = Client::find(socket, dir)?;
            // A large process takes a while to move.
            client.set_timeout(std::time::Duration::from_secs(600))?;
            match client.migrate(pid, &node)? {
                Moved::To {
                    pid,
                    node,
                    guest_pid,
                } => {
                    println!("process {pid} now runs on {node} (guest pid {guest_pid} there)");
                }
                Moved::Stays { pid, node } => {
                    println!("process {pid} stays on {node}: no node would run it better now");
                }
            }
        }
        Command::Checkpoint {
            pid,
            output,
            then,
            kill,
            stop,
            leave_running: _,
            embed_files,
        } => {
            use mosaic_node::checkpoint::After;
            let after = if kill {
                After::Kill
            } else if stop {
                After::Stop
            } else {
                then
            };
            mosaic_node::checkpoint::checkpoint(pid, &output, after, embed_files)?;
        }
        Command::Restore { image, stdio } => {
            let mode = match stdio {
                StdioArg::Image => mosaic_ckpt::StdioMode::FromImage,
                StdioArg::Inherit => mosaic_ckpt::StdioMode::Inherit,
            };
            return mosaic_node::checkpoint::restore(&image, mode);
        }
        Command::Cluster { command } => return cluster(command, dir),
    }
    Ok(0)
}

fn cluster(command: ClusterCommand, dir: &Path) -> anyhow::Result<i32> {
    match command {
        ClusterCommand::Up {
            nodes,
            cpus_per_node,
            memory_per_node,
            port,
        } => {
            let state = local::up(&local::UpOptions {
                nodes,
                cpus_per_node,
                memory_per_node,
                port,
                dir: dir.to_owned(),
            })?;
            let names: Vec<String> = state
                .nodes
                .iter()
                .map(|n| format!("{} {}", n.name, n.addr.ip()))
                .collect();
            println!(
                "local cluster up: {} ({}); state in {}\nnext: `mosaic nodes`, `mosaic mon`, `mosaic cluster exec node1 -- sh`",
                names.join(", "),
                if state.nodes.len() == 1 {
                    "1 node".to_string()
                } else {
                    format!("{} nodes", state.nodes.len())
                },
                dir.display()
            );
        }
        ClusterCommand::Add { key, memory } => {
            let node = local::add(dir, key, memory)?;
            println!("{} added at {}", node.name, node.addr);
        }
        ClusterCommand::Down => {
            let n = local::down(dir)?;
            println!("local cluster down: {n} nodes stopped");
        }
        ClusterCommand::Exec { node, command } => return local::exec(dir, &node, &command),
        ClusterCommand::Status { json } => {
            let rows = local::status(dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<8} {:<18} {:<8} {:>8} {:>8}  LOG",
                    "NODE", "ADDRESS", "STATE", "INIT", "DAEMON"
                );
                for r in rows {
                    println!(
                        "{:<8} {:<18} {:<8} {:>8} {:>8}  {}",
                        r.name,
                        r.addr,
                        if r.running { "running" } else { "stopped" },
                        r.init_pid,
                        r.daemon_pid
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "-".into()),
                        r.log.display()
                    );
                }
            }
        }
        ClusterCommand::Init {
            name,
            node_dir,
            cpus,
        } => return local::node_init(&name, &node_dir, cpus.as_deref()),
    }
    Ok(0)
}

/// `mosaic mfs status` for a human.
fn mfs_status_text(s: &mosaic_proto::control::MfsStatus) -> String {
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    if !s.mounted {
        return format!(
            "/mfs: not mounted: {}\n",
            if s.error.is_empty() {
                "unknown"
            } else {
                &s.error
            }
        );
    }
    format!(
        "/mfs: mounted at {}\nnodes: {}\nread {:.1} MiB, written {:.1} MiB in {} round trips; {} connections, {} failed requests\n",
        s.path,
        s.nodes.join(" "),
        mib(s.read_bytes),
        mib(s.written_bytes),
        s.round_trips,
        s.connects,
        s.transport_errors
    )
}

/// `mosaic run`: the command is our child, so the caller's shell sees its
/// exit status; once it has exec'd it is moved to the chosen node.
/// `mosaic node [ACTION]`: sets a control and shows them all; `expel` and
/// `bring` wait (with progress) until the node is empty of guests, or all
/// its processes are back.
fn node_control(socket: Option<&Path>, dir: &Path, cmd: Option<NodeCmd>) -> anyhow::Result<()> {
    use mosaic_proto::control::{NodeAction, NodeControls};
    let mut client = Client::find(socket, dir)?;
    let action = cmd.map_or(NodeAction::Show, NodeCmd::action);
    let (mut controls, message) = client.node(action.clone())?;
    if !message.is_empty() {
        println!("{message}");
    }
    // What expel and bring wait for: guests here, or processes away.
    let left = |c: &NodeControls| match action {
        NodeAction::Expel => Some((c.guests, "guests still here")),
        NodeAction::Bring => Some((c.away, "processes still away")),
        _ => None,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut shown = usize::MAX;
    while let Some((n, what)) = left(&controls).filter(|(n, _)| *n > 0) {
        if n != shown {
            println!("{n} {what} ...");
            shown = n;
        }
        if std::time::Instant::now() > deadline {
            bail!("{n} {what} after 60 s; see `mosaic ps` and the daemon's log");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        controls = client.node(NodeAction::Show)?.0;
    }
    let on = |b: bool| if b { "yes" } else { "no" };
    println!(
        "stay: {}  block: {}  quiet: {}  speed: {}  guests here: {}  processes away: {}",
        on(controls.stay),
        on(controls.block),
        on(controls.quiet),
        controls.speed,
        controls.guests,
        controls.away
    );
    Ok(())
}

fn run_command(
    socket: Option<&Path>,
    dir: &Path,
    node: Option<String>,
    best: bool,
    manage: (bool, mosaic_proto::control::Hint),
    command: &[String],
) -> anyhow::Result<i32> {
    let mut client = Client::find(socket, dir)?;
    let target = match (node, best) {
        (Some(n), _) => Some(n),
        (None, true) => {
            let nodes = client.nodes()?;
            nodes
                .iter()
                .filter(|n| !n.is_self && n.state == mosaic_proto::NodeState::Alive)
                .filter(|n| n.load.as_ref().is_some_and(|l| l.accepts_guests))
                .min_by(|a, b| {
                    let la = a
                        .load
                        .as_ref()
                        .map_or(f64::MAX, |l| l.normalized_load(1000));
                    let lb = b
                        .load
                        .as_ref()
                        .map_or(f64::MAX, |l| l.normalized_load(1000));
                    la.total_cmp(&lb)
                })
                .map(|n| n.name.clone())
        }
        (None, false) => None,
    };
    let (program, args) = command.split_first().context("nothing to run")?;
    let me = mosaic_proto::abi::my_pid();
    let (lock, hint) = manage;
    // Managed by PID and start time, which the exec keeps.
    if let Err(e) = client.manage(me, lock, hint) {
        eprintln!("mosaic: {program} is not managed: {e}");
    }
    drop(client);
    if let Some(node) = target {
        send_when_it_runs(me, node, program, socket, dir)?;
    } else if best {
        eprintln!("mosaic: no other node accepts guests; {program} runs here");
    }
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(program).args(args).exec();
    // As a shell says it: 127 for a command not found, 126 for one that
    // cannot be run.
    eprintln!("mosaic: cannot run {program}: {err}");
    Ok(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}

/// Asks for process `pid` to be moved to `node` once it is the program it
/// is about to exec, from a helper that is no child of it: forked twice,
/// the middle one reaped here before the exec, so the program never sees a
/// child it did not make (its `wait` would reap it). The helper keeps only
/// stderr, for what it has to say, and ends once the move is done.
fn send_when_it_runs(
    pid: i32,
    node: String,
    program: &str,
    socket: Option<&Path>,
    dir: &Path,
) -> anyhow::Result<()> {
    use nix::unistd::{ForkResult, fork};
    // SAFETY: `mosaic` has one thread here; the children call only what a
    // single-threaded process may after fork.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => {
            nix::sys::wait::waitpid(child, None).context("waitpid")?;
            Ok(())
        }
        ForkResult::Child => {
            // SAFETY: as above.
            if let Ok(ForkResult::Parent { .. }) | Err(_) = unsafe { fork() } {
                std::process::exit(0);
            }
            if let Ok(null) = std::fs::File::open("/dev/null") {
                let _ = nix::unistd::dup2_stdin(&null);
                let _ = nix::unistd::dup2_stdout(&null);
            }
            // Until it is the program (not `mosaic` before its exec).
            let me = std::fs::read_link("/proc/self/exe").ok();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while std::fs::read_link(format!("/proc/{pid}/exe")).ok() == me {
                if std::time::Instant::now() > deadline {
                    std::process::exit(0);
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let moved = (|| -> anyhow::Result<Moved> {
                let mut client = Client::find(socket, dir)?;
                client.set_timeout(std::time::Duration::from_secs(600))?;
                Ok(client.migrate(pid, &node)?)
            })();
            match moved {
                Ok(Moved::To { .. }) => {}
                Ok(Moved::Stays { node, .. }) => eprintln!("mosaic: {program} stays on {node}"),
                Err(e) => eprintln!("mosaic: {program} stays here: {e}"),
            }
            std::process::exit(0);
        }
    }
}

fn fetch_nodes(socket: Option<&Path>, dir: &Path) -> anyhow::Result<Vec<NodeInfo>> {
    Ok(Client::find(socket, dir)?.nodes()?)
}

fn nodes_table(nodes: &[NodeInfo]) -> String {
    let mut out = format!(
        "{:<10} {:<20} {:<6} {:>6} {:>5} {:>6} {:>10} {:>6}\n",
        "NODE", "ADDRESS", "STATE", "LOAD", "CPUS", "SPEED", "FREE MEM", "GUESTS"
    );
    for n in nodes {
        let name = if n.is_self {
            format!("{}*", n.name)
        } else {
            n.name.clone()
        };
        let (load, cpus, speed, free, guests) = match &n.load {
            Some(l) => (
                format!("{:.2}", l.load),
                l.cpus.to_string(),
                l.speed.to_string(),
                human_bytes(l.mem_free),
                l.guests.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
        };
        out.push_str(&format!(
            "{name:<10} {:<20} {:<6} {load:>6} {cpus:>5} {speed:>6} {free:>10} {guests:>6}\n",
            n.addr, n.state
        ));
    }
    out
}

fn human_bytes(b: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let b = b as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.0} MiB", b / MIB)
    }
}

fn keygen(output: &Path, force: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if output.exists() && !force {
        bail!(
            "{} already exists; every node of a cluster needs the same key, so it is kept (use --force to replace it)",
            output.display()
        );
    }
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let key = local::new_key()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    f.write_all(key.to_file_contents().as_bytes())?;
    println!(
        "wrote cluster key {} (fingerprint {}); copy it to every node and set key_file in mosaicd.toml",
        output.display(),
        key.fingerprint()
    );
    Ok(())
}
