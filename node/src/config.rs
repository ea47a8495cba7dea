//! `mosaicd`'s configuration file (TOML).
//!
//! ```toml
//! name = "node1"                      # unique in the cluster
//! listen = "127.0.0.11:7946"          # gossip address (UDP), also advertised
//! seeds = ["127.0.0.12:7946"]         # any live members; empty for the first node
//! key_file = "/etc/mosaic/cluster.key" # made by `mosaic keygen`
//! control_socket = "/run/mosaic/mosaicd.sock"
//! speed = 1000                        # optional: skip calibration
//! cpus = 2                            # optional: override the CPU count
//! memory_mib = 4096                  # optional: memory offered (default: the machine's)
//! accept_guests = true
//! guest_uid = 65534                   # the unprivileged user guests run as
//! guest_gid = 65534
//! export = "/"                        # the tree served to peers over 9P (TCP, listen port + 1)
//! export_read_only = false
//! exports = ["/home", "/srv"]         # optional: serve only these trees of `export`
//! mfs = "/mfs"                        # where every node's files show; "" for none
//! web = "127.0.0.1:7948"              # optional: serve the web view here (off when absent)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Everything `mosaicd` needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Node name, unique in the cluster.
    pub name: String,
    /// Address to gossip on; peers reach this node there.
    pub listen: SocketAddr,
    /// Addresses (`host:port`) of members to join through.
    #[serde(default)]
    pub seeds: Vec<String>,
    /// Path of the cluster key file.
    pub key_file: PathBuf,
    /// Path of the local control socket.
    #[serde(default = "default_socket")]
    pub control_socket: PathBuf,
    /// Relative CPU speed; calibrated at start when absent.
    #[serde(default)]
    pub speed: Option<u32>,
    /// CPUs this node offers; the CPUs it may run on when absent.
    #[serde(default)]
    pub cpus: Option<u32>,
    /// Memory this node offers to processes, in MiB; when set, its free
    /// memory is this minus what its processes hold (a namespaced local
    /// node, or a share of a machine). The machine's memory when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Whether this node accepts guests.
    #[serde(default = "default_true")]
    pub accept_guests: bool,
    /// The unprivileged user and group guests run as on this node.
    #[serde(default = "default_guest_id")]
    pub guest_uid: u32,
    #[serde(default = "default_guest_id")]
    pub guest_gid: u32,
    /// The tree this node serves to its peers over 9P2000.L.
    #[serde(default = "default_export")]
    pub export: PathBuf,
    /// Whether peers may only read it.
    #[serde(default)]
    pub export_read_only: bool,
    /// Serve only these trees of `export` (real directories), and the
    /// directories leading to them (listed, not changed); empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<PathBuf>,
    /// Where `/mfs` (every node's files, `home`, `here`, `proc`) is
    /// mounted; empty: not mounted.
    #[serde(default = "default_mfs")]
    pub mfs: PathBuf,
    /// Where to serve the web view (`crate::web`); off when absent. The
    /// token travels in clear over HTTP: keep it on a loopback address and
    /// reach it through a tunnel (`ssh -L`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<SocketAddr>,
}

/// `/mfs`.
pub fn default_mfs() -> PathBuf {
    PathBuf::from("/mfs")
}

fn default_export() -> PathBuf {
    PathBuf::from("/")
}

fn default_guest_id() -> u32 {
    65534 // nobody / nogroup
}

fn default_socket() -> PathBuf {
    PathBuf::from(crate::DEFAULT_SOCKET)
}

fn default_true() -> bool {
    true
}

/// Why a configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        config.check().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// Checks what the types cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.contains(['/', ' ', '\n']) {
            return Err(format!(
                "node name {:?} must be non-empty, without '/', spaces or newlines",
                self.name
            ));
        }
        if matches!(self.name.as_str(), "here" | "home" | "proc" | "ps") {
            return Err(format!(
                "node name {:?} is taken by /mfs's own entries: choose another",
                self.name
            ));
        }
        if self.guest_uid == 0 || self.guest_gid == 0 {
            return Err(
                "guests must not run as root: set guest_uid and guest_gid to an unprivileged user"
                    .into(),
            );
        }
        if self.speed == Some(0) || self.cpus == Some(0) || self.memory_mib == Some(0) {
            return Err("speed, cpus and memory_mib must be positive when set".into());
        }
        Ok(())
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let text = r#"
            name = "node1"
            listen = "127.0.0.11:7946"
            key_file = "/tmp/k"
        "#;
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c.control_socket, PathBuf::from(crate::DEFAULT_SOCKET));
        assert!(c.accept_guests);
        assert!(c.seeds.is_empty());
        let again: Config = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn unknown_fields_and_bad_names_are_refused() {
        let dir = std::env::temp_dir().join(format!("mosaic-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.toml");
        std::fs::write(
            &p,
            "name='a'\nlisten='127.0.0.1:1'\nkey_file='k'\nlisen='x'\n",
        )
        .unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
        std::fs::write(&p, "name='a b'\nlisten='127.0.0.1:1'\nkey_file='k'\n").unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("node name"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
