//! `mosaic-9p`: serves a directory over plain 9P2000.L on a loopback TCP
//! port, without authentication, one thread per connection. For testing
//! the server with third-party 9P clients (diod's tools, p9fs); mosaicd
//! serves its peers over the cluster's authenticated channel instead.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Parser;

/// Serve DIR over plain 9P2000.L on a loopback address (tests only).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Address to listen on; must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:5640")]
    listen: std::net::SocketAddr,
    /// Refuse every change.
    #[arg(long)]
    read_only: bool,
    /// The directory to serve.
    dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cli.listen.ip().is_loopback() {
        bail!(
            "{} is not a loopback address: plain 9P has no authentication, so mosaic-9p serves only this machine",
            cli.listen
        );
    }
    let export = Arc::new(
        mosaic_ssi_fs::export::Export::open(&cli.dir, cli.read_only)
            .with_context(|| format!("cannot serve {}", cli.dir.display()))?,
    );
    let listener = std::net::TcpListener::bind(cli.listen)
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    eprintln!("mosaic-9p: serving {} on {}", cli.dir.display(), cli.listen);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let export = export.clone();
        std::thread::spawn(move || {
            if let Err(e) = mosaic_ssi_fs::server::serve(export, stream) {
                eprintln!("mosaic-9p: a connection ended: {e}");
            }
        });
    }
    Ok(())
}
