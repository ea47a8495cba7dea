//! `mosaicd`: the mosaic daemon, one per node.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use mosaic_node::config::Config;

/// The mosaic daemon: joins the cluster, gossips load, serves `mosaic`.
#[derive(Parser, Debug)]
#[command(name = "mosaicd", version, about)]
struct Args {
    /// Config file (TOML: name, listen, seeds, key_file, control_socket, speed, cpus).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Node name (overrides the config).
    #[arg(long)]
    name: Option<String>,
    /// Gossip address, e.g. 192.168.1.5:7946 (overrides the config).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A member to join through; repeatable (replaces the config's seeds).
    #[arg(long = "seed")]
    seeds: Vec<String>,
    /// Cluster key file (overrides the config).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Control socket path (overrides the config).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Relative CPU speed, skipping calibration (overrides the config).
    #[arg(long)]
    speed: Option<u32>,
    /// Serve the web view at this address, e.g. 127.0.0.1:7948 (overrides the config).
    #[arg(long)]
    web: Option<SocketAddr>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

fn config_from(args: &Args) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config {
            name: args.name.clone().context(
                "no config: give --config FILE, or at least --name, --listen and --key-file",
            )?,
            listen: args
                .listen
                .context("no config: --listen ADDR:PORT is needed without --config")?,
            seeds: Vec::new(),
            key_file: args.key_file.clone().context(
                "no config: --key-file is needed without --config (make one with `mosaic keygen`)",
            )?,
            control_socket: PathBuf::from(mosaic_node::DEFAULT_SOCKET),
            speed: None,
            cpus: None,
            memory_mib: None,
            accept_guests: true,
            guest_uid: 65534,
            guest_gid: 65534,
            export: PathBuf::from("/"),
            export_read_only: false,
            exports: Vec::new(),
            mfs: mosaic_node::config::default_mfs(),
            web: None,
        },
    };
    if let Some(n) = &args.name {
        config.name = n.clone();
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if !args.seeds.is_empty() {
        config.seeds = args.seeds.clone();
    }
    if let Some(k) = &args.key_file {
        config.key_file = k.clone();
    }
    if let Some(s) = &args.socket {
        config.control_socket = s.clone();
    }
    if args.web.is_some() {
        config.web = args.web;
    }
    if args.speed.is_some() {
        config.speed = args.speed;
    }
    config.check().map_err(anyhow::Error::msg)?;
    Ok(config)
}

fn main() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("MOSAIC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let result = config_from(&args).and_then(|config| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(mosaic_node::daemon::run(config))
    });
    if let Err(e) = result {
        tracing::error!("{e:#}");
        eprintln!("mosaicd: {e:#}");
        std::process::exit(1);
    }
}
