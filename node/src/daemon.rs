//! `mosaicd`: wires membership, load sampling and the control socket.

/// Log lines others look for, one text for writer and readers.
pub mod log {
    /// The balancer sends a guest of this node on (or home).
    pub const MOVING_GUEST: &str = "balancer: moving a guest";
    /// The balancer sends a process of this node away.
    pub const MOVING_PROCESS: &str = "balancer: moving a process";
    /// A leaving node's guests were still here when it gave up waiting.
    pub const GUESTS_DID_NOT_LEAVE: &str = "guests did not leave in time; they end with this node";
}

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mosaic_proto::{ClusterKey, ControlRequest, ControlResponse};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use crate::config::Config;
use crate::gossip::{Membership, MembershipConfig};
use crate::load::{NodeShape, Sampler};

/// How often the balancer runs and the load vector is republished (a
/// move waits for a view of its target newer than the wish to move, so
/// this sets how soon new work spreads; gossip runs as often).
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// The process table is republished every this many intervals.
const PROCS_EVERY: u32 = 4;

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
    // Every fid of a peer's file session holds a descriptor: allow what
    // the system allows, not the default 1024.
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let (machine, cpuset) = NodeShape::placement();
    let shape = NodeShape {
        cpus: config.cpus.unwrap_or_else(crate::load::usable_cpus),
        speed: config.speed.unwrap_or_else(crate::load::calibrate_speed),
        accepts_guests: config.accept_guests,
        memory: config.memory_mib.map(|m| m << 20),
        machine,
        cpuset,
    };
    let sampler = Sampler::start(shape.clone());
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
    let controls = Arc::new(crate::controls::Controls::default());
    let mfs = Arc::new(crate::files::MfsState::default());
    // A web view that cannot bind is no reason to stop the node.
    let web = match config.web {
        Some(addr) => match crate::web::bind(addr).await {
            Ok(listener) => Some((listener, addr)),
            Err(e) => {
                warn!(%addr, error = %e, "no web view: cannot listen there");
                None
            }
        },
        None => None,
    };
    let web_url = web.as_ref().map(|(_, addr)| crate::web::url(*addr, &key));
    let handler = {
        let mfs = mfs.clone();
        let web_url = web_url.clone();
        let membership = membership.clone();
        let sampler = sampler.clone();
        let name = config.name.clone();
        let addr = config.listen.to_string();
        let key = key.clone();
        let registry = registry.clone();
        let (guests, controls) = (guests.clone(), controls.clone());
        move |req: ControlRequest| {
            let membership = membership.clone();
            let sampler = sampler.clone();
            let name = name.clone();
            let addr = addr.clone();
            let key = key.clone();
            let registry = registry.clone();
            let (guests, controls) = (guests.clone(), controls.clone());
            let mfs = mfs.clone();
            let web_url = web_url.clone();
            async move {
                match req {
                    ControlRequest::Web => match web_url {
                        Some(url) => ControlResponse::Web { url },
                        None => ControlResponse::Error {
                            message: "this node serves no web view; set `web = \"127.0.0.1:7948\"` in its config or start mosaicd with --web ADDR".into(),
                        },
                    },
                    ControlRequest::ChildrenCpu { pid } => ControlResponse::ChildrenCpu {
                        pid,
                        cpu: registry.children_cpu(pid),
                    },
                    ControlRequest::Mfs => ControlResponse::Mfs {
                        status: mfs.status(),
                    },
                    ControlRequest::Nodes => ControlResponse::Nodes {
                        nodes: membership.nodes().await,
                    },
                    ControlRequest::Status => ControlResponse::Status {
                        name,
                        addr,
                        load: controls.apply(sampler.current()),
                    },
                    ControlRequest::Migrate { pid, node } if node == "balance" => {
                        let here = controls.apply(sampler.current());
                        let best = place(&membership, &registry, &name, pid, here).await;
                        match best {
                            Ok(Some(node)) => {
                                crate::migration::start(
                                    &membership,
                                    &registry,
                                    &name,
                                    &key,
                                    pid,
                                    node,
                                )
                                .await
                            }
                            Ok(None) => ControlResponse::Stays {
                                pid,
                                node: registry.where_is(pid).unwrap_or(name),
                            },
                            Err(message) => ControlResponse::Error { message },
                        }
                    }
                    ControlRequest::Migrate { pid, node } => {
                        crate::migration::start(&membership, &registry, &name, &key, pid, node)
                            .await
                    }
                    ControlRequest::Ps => ControlResponse::Ps {
                        procs: membership.procs().await,
                    },
                    ControlRequest::Manage { pid, lock, hint } => {
                        match registry.manage(pid, lock, hint) {
                            Ok(()) => ControlResponse::Managed { pid },
                            Err(message) => ControlResponse::Error { message },
                        }
                    }
                    ControlRequest::Node { action } => {
                        controls.set(&action);
                        let message = match action {
                            mosaic_proto::control::NodeAction::Expel => {
                                let n = guests.send_all_home();
                                info!(guests = n, "expel: sending every guest home");
                                format!("{n} guests sent home; no new guests accepted")
                            }
                            mosaic_proto::control::NodeAction::Bring => {
                                let n = registry.call_all_home();
                                info!(processes = n, "bring: calling every process home");
                                format!("{n} processes called home")
                            }
                            mosaic_proto::control::NodeAction::Show => String::new(),
                            other => {
                                info!(action = ?other, "node control");
                                String::new()
                            }
                        };
                        ControlResponse::Node {
                            controls: controls.snapshot(
                                &sampler.current(),
                                guests.present(),
                                registry.away_count(),
                            ),
                            message,
                        }
                    }
                }
            }
        }
    };
    if let Some((listener, addr)) = web {
        let handler = handler.clone();
        let ask: crate::web::Ask = Arc::new(move |req| Box::pin(handler(req)));
        tokio::spawn(crate::web::serve(
            listener,
            config.name.clone(),
            key.clone(),
            ask,
        ));
        membership.publish_web(&addr.to_string()).await;
        info!(%addr, "web view served (`mosaic web` prints its address with the token)");
    }
    let server = tokio::spawn(crate::control::serve(listener, handler));
    let export = mosaic_ssi_fs::export::Export::open(&config.export, config.export_read_only)
        .and_then(|e| e.only(&config.exports, &config.export))
        .and_then(|e| {
            // Its own /mfs is never served: a walk into it would come
            // back to this server.
            if !config.mfs.as_os_str().is_empty() && config.mfs.starts_with(&config.export) {
                e.hide(&config.mfs, &config.export)
            } else {
                Ok(e)
            }
        })
        .map_err(|e| anyhow::anyhow!("cannot serve {}: {e}", config.export.display()))?;
    let view = crate::files::View {
        me: config.name.clone(),
        key: key.clone(),
        facts: Default::default(),
        guests: guests.clone(),
        registry: registry.clone(),
    };
    refresh_facts(&view, &membership, &sampler.current(), true).await;
    crate::files::serve(
        crate::files::fs_addr(config.listen),
        key.clone(),
        export,
        Arc::new(view.clone()),
    )?;
    mfs.mount(&config.mfs, view.clone());
    crate::migration::listen(
        config.listen,
        key.clone(),
        mosaic_remote::GuestPolicy {
            uid: config.guest_uid,
            gid: config.guest_gid,
            accept: config.accept_guests,
            mfs: mfs.is_mounted().then(|| config.mfs.clone()),
        },
        guests.clone(),
        controls.clone(),
    )?;

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(PUBLISH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u32;
    let balancer = Arc::new(std::sync::Mutex::new(
        crate::balancer::Balancer::with_profiles(registry.profiles()),
    ));
    let why = loop {
        tokio::select! {
            _ = tick.tick() => {
                let mut load = controls.apply(sampler.current());
                // The guests it hosts (`mosaic nodes` showed 0 for a node
                // running five).
                load.guests = u32::try_from(guests.present()).unwrap_or(u32::MAX);
                let ctx = Ctx {
                    membership: &membership,
                    registry: &registry,
                    guests: &guests,
                    controls: &controls,
                    me: &config.name,
                    key: &key,
                };
                if controls.expelling() {
                    // Late arrivals (their migration passed the door
                    // before the block) are sent home too.
                    guests.send_all_home();
                }
                // Dated when sampled: what the balancer counts now.
                let sampled_at = mosaic_proto::load::now_ms();
                balance(&ctx, &balancer, load.clone()).await;
                // At least the processes the balancer saw busy: the others
                // then compare what this node compares.
                let busy = balancer.lock().map(|b| b.busy()).unwrap_or_default();
                load.load = load.load.max(busy as f64);
                load.at_ms = sampled_at;
                if controls.quiet() {
                    membership.publish_quiet().await;
                } else {
                    membership.publish_load(&load).await;
                }
                ticks = ticks.wrapping_add(1);
                if ticks % PROCS_EVERY != 1 {
                    refresh_facts(&view, &membership, &load, false).await;
                    continue;
                }
                let (me, registry, guests) = (config.name.clone(), registry.clone(), guests.clone());
                if let Ok((procs, guests)) =
                    tokio::task::spawn_blocking(move || (registry.list(&me), guests.list())).await
                {
                    membership.publish_procs(&procs, &guests).await;
                }
                refresh_facts(&view, &membership, &load, true).await;
            }
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
        }
    };
    info!(node = %config.name, signal = why, "mosaicd stopping");
    // Leaving cleanly: no newcomers, guests go home, and this node's own
    // processes that run elsewhere are served until they end (or, on a
    // second signal, called home first). No process is lost by a stop.
    controls.set(&mosaic_proto::control::NodeAction::Expel);
    membership
        .publish_load(&controls.apply(sampler.current()))
        .await;
    if guests.present() > 0 {
        info!(guests = guests.present(), "sending every guest home");
        // Again and again: a migration that passed the door before the
        // block lands its guest later.
        let left = wait_until(LEAVE_WAIT, || {
            guests.send_all_home();
            guests.present()
        })
        .await;
        if left > 0 {
            warn!(guests = left, "{}", log::GUESTS_DID_NOT_LEAVE);
        }
    }
    if registry.away_count() > 0 {
        info!(
            processes = registry.away_count(),
            "processes of this node run elsewhere: serving them until they end (signal again to call them home)"
        );
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if registry.away_count() == 0 {
                        break;
                    }
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        let called = registry.call_all_home();
        if called > 0 {
            info!(processes = called, "calling this node's processes home");
            let left = wait_until(LEAVE_WAIT, || registry.away_count()).await;
            if left > 0 {
                warn!(
                    processes = left,
                    "processes did not come home in time; they end with this node"
                );
            }
        }
    }
    mfs.unmount();
    info!(node = %config.name, "saying goodbye");
    server.abort();
    let _ = std::fs::remove_file(&config.control_socket);
    membership.leave().await;
    info!(node = %config.name, "mosaicd stopped");
    Ok(())
}

/// Where process `pid` of this node would run best now (`None`: where it
/// is), for `mosaic migrate PID balance`.
async fn place(
    membership: &crate::gossip::Membership,
    registry: &crate::migration::Registry,
    me: &str,
    pid: i32,
    my_load: mosaic_proto::LoadVector,
) -> Result<Option<String>, String> {
    if registry.where_is(pid).is_none() && mosaic_ckpt::procstat::stat(pid).is_none() {
        return Err(format!("no process {pid} here"));
    }
    // This node as the others see it (its published load counts its busy
    // processes at once), else as sampled.
    let mut loads: Vec<(String, mosaic_proto::LoadVector)> = membership
        .nodes()
        .await
        .into_iter()
        .filter(|n| n.is_self || n.state == mosaic_proto::NodeState::Alive)
        .filter_map(|n| Some((n.name, n.load?)))
        .collect();
    if !loads.iter().any(|(n, _)| n == me) {
        loads.push((me.to_string(), my_load));
    }
    let here = registry.where_is(pid).unwrap_or_else(|| me.to_string());
    let Some(at) = loads.iter().position(|(n, _)| *n == here) else {
        return Err(format!(
            "{here}, where process {pid} runs, publishes no load"
        ));
    };
    let (_, here_load) = loads.remove(at);
    Ok(crate::balancer::place(&here_load, &loads)
        .map(|node| if node == me { "home".to_string() } else { node }))
}

/// Refreshes what `/mfs` and the `proc` tree show: live nodes and this
/// node's load every tick, the cluster's processes when `procs`.
async fn refresh_facts(
    view: &crate::files::View,
    membership: &crate::gossip::Membership,
    load: &mosaic_proto::LoadVector,
    procs: bool,
) {
    let nodes: Vec<(String, std::net::SocketAddr)> = membership
        .nodes()
        .await
        .into_iter()
        .filter(|n| {
            use mosaic_proto::NodeState::{Alive, Joining};
            n.is_self || matches!(n.state, Alive | Joining)
        })
        .filter_map(|n| Some((n.name, n.addr.parse().ok()?)))
        .collect();
    let procs = if procs {
        Some(membership.procs().await)
    } else {
        None
    };
    let mut facts = view.facts.lock().unwrap_or_else(|e| e.into_inner());
    facts.nodes = nodes;
    facts.load = load.clone();
    if let Some(procs) = procs {
        facts.procs = procs;
    }
}

/// How long a stopping node waits for its guests to leave, and for its
/// processes to come home.
const LEAVE_WAIT: Duration = Duration::from_secs(15);

/// Polls `count` until it is 0 or `limit` passes; returns the last count.
async fn wait_until(limit: Duration, count: impl Fn() -> usize) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = count();
        if n == 0 || tokio::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the balancer works with.
struct Ctx<'a> {
    membership: &'a Arc<crate::gossip::Membership>,
    registry: &'a crate::migration::Registry,
    guests: &'a crate::migration::Guests,
    controls: &'a Arc<crate::controls::Controls>,
    me: &'a str,
    key: &'a mosaic_proto::ClusterKey,
}

/// One interval of the balancer: the moves it decides are started in the
/// background (each answers when its guest runs, or why not).
async fn balance(
    ctx: &Ctx<'_>,
    balancer: &Arc<std::sync::Mutex<crate::balancer::Balancer>>,
    load: mosaic_proto::LoadVector,
) {
    let Ctx {
        membership,
        registry,
        guests,
        controls,
        me,
        key,
    } = *ctx;
    let peers: Vec<(String, mosaic_proto::LoadVector)> = membership
        .nodes()
        .await
        .into_iter()
        .filter(|n| !n.is_self && n.state == mosaic_proto::NodeState::Alive)
        .filter_map(|n| Some((n.name, n.load?)))
        .collect();
    let (balancer, pins, visitors) = (balancer.clone(), registry.clone(), guests.clone());
    let stay = controls.stay();
    let moves = tokio::task::spawn_blocking(move || {
        use crate::balancer::{Facts, Kind};
        use mosaic_proto::control::Hint;
        let mut b = balancer.lock().unwrap_or_else(|e| e.into_inner());
        b.tick(&load, peers, &|pid| {
            if let Some(forwarded) = visitors.forwarded(pid) {
                return Facts {
                    kind: if visitors.locked(pid) {
                        Kind::Pinned
                    } else {
                        Kind::Guest
                    },
                    forwarded: Some(forwarded),
                };
            }
            let kind = if pins.is_away(pid) {
                Kind::Away
            } else if stay || pins.locked(pid) {
                Kind::Pinned
            } else {
                match pins.hint(pid) {
                    Hint::IoBound => Kind::Pinned,
                    Hint::CpuBound => Kind::CpuBound,
                    Hint::None => Kind::Free,
                }
            };
            Facts {
                kind,
                forwarded: None,
            }
        })
    })
    .await
    .unwrap_or_default();
    for (pid, node) in moves {
        if let Some(home) = guests.home_of(pid) {
            // A guest: its deputy at home carries the move out.
            let order = if node == crate::balancer::HOME || node == home {
                mosaic_remote::HostOrder::Home
            } else {
                mosaic_remote::HostOrder::MoveTo(node.clone())
            };
            info!(pid, to = %node, %home, "{}", log::MOVING_GUEST);
            guests.order(pid, order);
            continue;
        }
        info!(pid, to = %node, "{}", log::MOVING_PROCESS);
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
