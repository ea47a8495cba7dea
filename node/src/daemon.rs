//! `mosaicd`: wires membership, load sampling and the control socket.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mosaic_proto::{ClusterKey, ControlRequest, ControlResponse};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use crate::config::Config;
use crate::gossip::{Membership, MembershipConfig};
use crate::load::{NodeShape, Sampler};

/// How often the load vector is republished.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Reads a cluster key file, with an error that says how to make one.
pub fn read_key(path: &Path) -> anyhow::Result<ClusterKey> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read cluster key {}; create one with `mosaic keygen -o {}` and copy it to every node",
            path.display(),
            path.display()
        )
    })?;
    ClusterKey::parse(&text).with_context(|| format!("cluster key {}", path.display()))
}

/// Runs the daemon until SIGTERM or SIGINT, then says goodbye.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let key = read_key(&config.key_file)?;
    let shape = NodeShape {
        cpus: config.cpus.unwrap_or_else(crate::load::usable_cpus),
        speed: config.speed.unwrap_or_else(crate::load::calibrate_speed),
        accepts_guests: config.accept_guests,
    };
    let sampler = Sampler::start(shape);
    let listener = crate::control::bind(&config.control_socket)?;
    let membership = Arc::new(
        Membership::start(
            MembershipConfig {
                name: config.name.clone(),
                listen: config.listen,
                seeds: config.seeds.clone(),
                key: key.clone(),
            },
            &sampler.current(),
        )
        .await?,
    );
    info!(
        node = %config.name,
        listen = %config.listen,
        seeds = ?config.seeds,
        key = %key.fingerprint(),
        cpus = shape.cpus,
        speed = shape.speed,
        socket = %config.control_socket.display(),
        "mosaicd started"
    );

    let sampler = Arc::new(sampler);
    let registry = crate::migration::Registry::default();
    let guests = crate::migration::Guests::default();
    let handler = {
        let membership = membership.clone();
        let sampler = sampler.clone();
        let name = config.name.clone();
        let addr = config.listen.to_string();
        let key = key.clone();
        let registry = registry.clone();
        move |req: ControlRequest| {
            let membership = membership.clone();
            let sampler = sampler.clone();
            let name = name.clone();
            let addr = addr.clone();
            let key = key.clone();
            let registry = registry.clone();
            async move {
                match req {
                    ControlRequest::Nodes => ControlResponse::Nodes {
                        nodes: membership.nodes().await,
                    },
                    ControlRequest::Status => ControlResponse::Status {
                        name,
                        addr,
                        load: sampler.current(),
                    },
                    ControlRequest::Migrate { pid, node } => {
                        crate::migration::start(&membership, &registry, &name, &key, pid, node)
                            .await
                    }
                    ControlRequest::Ps => ControlResponse::Ps {
                        procs: membership.procs().await,
                    },
                    ControlRequest::Manage { pid, lock } => match registry.manage(pid, lock) {
                        Ok(()) => ControlResponse::Managed { pid },
                        Err(message) => ControlResponse::Error { message },
                    },
                }
            }
        }
    };
    let server = tokio::spawn(crate::control::serve(listener, handler));
    crate::migration::listen(
        config.listen,
        key.clone(),
        mosaic_remote::GuestPolicy {
            uid: config.guest_uid,
            gid: config.guest_gid,
            accept: config.accept_guests,
        },
        guests.clone(),
    )?;

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(PUBLISH_EVERY);
    let balancer = Arc::new(std::sync::Mutex::new(crate::balancer::Balancer::default()));
    let why = loop {
        tokio::select! {
            _ = tick.tick() => {
                membership.publish_load(&sampler.current()).await;
                balance(&membership, &registry, &guests, &balancer, &config.name, &key, sampler.current()).await;
                let (me, registry, guests) = (config.name.clone(), registry.clone(), guests.clone());
                if let Ok((procs, guests)) =
                    tokio::task::spawn_blocking(move || (registry.list(&me), guests.list())).await
                {
                    membership.publish_procs(&procs, &guests).await;
                }
            }
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
        }
    };
    info!(node = %config.name, signal = why, "mosaicd stopping; saying goodbye");
    server.abort();
    let _ = std::fs::remove_file(&config.control_socket);
    membership.leave().await;
    info!(node = %config.name, "mosaicd stopped");
    Ok(())
}

/// One interval of the balancer: the moves it decides are started in the
/// background (each answers when its guest runs, or why not).
async fn balance(
    membership: &Arc<crate::gossip::Membership>,
    registry: &crate::migration::Registry,
    guests: &crate::migration::Guests,
    balancer: &Arc<std::sync::Mutex<crate::balancer::Balancer>>,
    me: &str,
    key: &mosaic_proto::ClusterKey,
    load: mosaic_proto::LoadVector,
) {
    let peers: Vec<(String, mosaic_proto::LoadVector)> = membership
        .nodes()
        .await
        .into_iter()
        .filter(|n| !n.is_self && n.state == mosaic_proto::NodeState::Alive)
        .filter_map(|n| Some((n.name, n.load?)))
        .collect();
    let (balancer, pins, guests) = (balancer.clone(), registry.clone(), guests.clone());
    let moves = tokio::task::spawn_blocking(move || {
        let mut b = balancer.lock().unwrap_or_else(|e| e.into_inner());
        // Guests are not this node's processes: their deputies move them.
        b.tick(&load, peers, &|pid| {
            pins.locked(pid) || pins.is_away(pid) || guests.contains(pid)
        })
    })
    .await
    .unwrap_or_default();
    for (pid, node) in moves {
        info!(pid, to = %node, "balancer: moving a busy process");
        let (membership, registry, me, key) = (
            membership.clone(),
            registry.clone(),
            me.to_string(),
            key.clone(),
        );
        tokio::spawn(async move {
            let answer =
                crate::migration::start(&membership, &registry, &me, &key, pid, node.clone()).await;
            if let mosaic_proto::ControlResponse::Error { message } = answer {
                info!(pid, to = %node, %message, "balancer: the move did not happen");
            }
        });
    }
}
