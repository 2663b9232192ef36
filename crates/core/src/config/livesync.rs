//! The `livesync.*` section.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::values::{bad, canonical};
use super::{ConfigError, ConfigErrorKind};
use crate::nets::Nets;

/// Live sync's default port, also where opentracker sends (`LIVESYNC_PORT` in
/// `ot_livesync.h`).
pub const LIVESYNC_PORT: u16 = 9696;

/// Live sync: opentracker's multicast cluster mode (`ot_livesync.c`), plus ferrotracker's
/// unicast peers and shared key (extensions opentracker nodes do not understand; off by
/// default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSyncConfig {
    /// Where to listen (`livesync.cluster.listen IP[:PORT]` or `-i IP -s PORT`, port 9696);
    /// `None` = live sync off. In multicast mode an IPv4 interface address.
    pub listen: Option<SocketAddr>,
    /// Nets whose packets are accepted (`livesync.cluster.node_ip`, repeatable); `-A` nets and
    /// unicast peers are accepted too ([`Config::livesync_nodes`]).
    pub nodes: Nets,
    /// Unicast mode (`livesync.cluster.peer IP[:PORT]`, repeatable): every packet goes to each
    /// of these instead of the multicast group. A peer equal to `listen` (this node) is skipped,
    /// so every node can share one list.
    pub peers: Vec<SocketAddr>,
    /// Shared key of the authenticated extension (`livesync.cluster.key HEX`).
    pub key: Option<Vec<u8>>,
    /// The config file the key was read from: the server warns when others may read it.
    pub key_file: Option<PathBuf>,
    /// Destination port of multicast packets (`livesync.cluster.send_port`). opentracker
    /// always sends to 9696, whatever port it listens on; so does the default.
    pub send_port: u16,
    /// Seconds a partly filled packet may wait (`livesync.flush_delay`, opentracker: 15).
    pub flush_delay: u32,
}

impl Default for LiveSyncConfig {
    fn default() -> Self {
        LiveSyncConfig {
            listen: None,
            nodes: Nets::default(),
            peers: Vec::new(),
            key: None,
            key_file: None,
            send_port: LIVESYNC_PORT,
            flush_delay: 15,
        }
    }
}

impl LiveSyncConfig {
    /// opentracker allows one listen statement (`-s` included).
    pub(super) fn set_listen(&mut self, addr: SocketAddr) -> Result<(), ConfigErrorKind> {
        if self.listen.is_some() {
            return Err(bad("live sync listen address given twice".to_string()));
        }
        self.listen = Some(canonical(addr));
        Ok(())
    }

    /// Multicast mode is IPv4 (as opentracker); the other keys need a listen address.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let Some(listen) = self.listen else {
            let given = [
                (!self.nodes.is_empty(), "livesync.cluster.node_ip"),
                (!self.peers.is_empty(), "livesync.cluster.peer"),
                (self.key.is_some(), "livesync.cluster.key"),
            ];
            return match given.iter().find(|(g, _)| *g) {
                Some((_, key)) => Err(ConfigError::general(
                    key,
                    ConfigErrorKind::BadValue(
                        "live sync needs livesync.cluster.listen (or -s)".to_string(),
                    ),
                )),
                None => Ok(()),
            };
        };
        // Canonical already (see `canonical`); checked so again, as what it guards is the rule
        // that a unicast node takes datagrams sent to its own address only.
        if !self.peers.is_empty() && listen.ip().to_canonical().is_unspecified() {
            return Err(ConfigError::general(
                "livesync.cluster.listen",
                ConfigErrorKind::BadValue(format!(
                    "{listen}: unicast live sync listens on this node's own address (an \
                     unspecified one would take datagrams sent to any address of the host)"
                )),
            ));
        }
        if self.peers.is_empty() && listen.is_ipv6() {
            return Err(ConfigError::general(
                "livesync.cluster.listen",
                ConfigErrorKind::BadValue(format!(
                    "{listen}: multicast live sync is IPv4 only (as opentracker); list the nodes \
                     with livesync.cluster.peer for unicast over IPv6"
                )),
            ));
        }
        Ok(())
    }
}
