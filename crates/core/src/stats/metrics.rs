//! `/metrics`: every counter and gauge in Prometheus' text exposition format.

use std::fmt::Write as _;

use super::Snapshot;

/// `/metrics`: Prometheus text exposition format 0.0.4.
pub fn render_metrics(s: &Snapshot, out: &mut String) {
    let c = &s.counters;
    let t = &s.totals;
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
    };
    family(
        "ferrotracker_requests_total",
        "counter",
        "Requests answered, by protocol and kind.",
        &[
            (r#"proto="http",kind="announce""#, c.http_announces),
            (r#"proto="http",kind="scrape""#, c.http_scrapes),
            (r#"proto="http",kind="full_scrape""#, c.full_scrapes),
            (r#"proto="http",kind="stats""#, c.http_stats),
            (r#"proto="udp",kind="connect""#, c.udp_connects),
            (r#"proto="udp",kind="announce""#, c.udp_announces),
            (r#"proto="udp",kind="scrape""#, c.udp_scrapes),
            (r#"proto="websocket",kind="announce""#, c.ws_announces),
            (r#"proto="websocket",kind="scrape""#, c.ws_scrapes),
        ],
    );
    family(
        "ferrotracker_errors_total",
        "counter",
        "Requests refused, by protocol and reason (HTTP: status code).",
        &[
            (r#"proto="http",code="302""#, c.http_redirects),
            (
                r#"proto="http",code="400""#,
                c.http_400_param + c.http_400_parse,
            ),
            (r#"proto="http",code="403""#, c.http_403),
            (r#"proto="http",code="404""#, c.http_404),
            (r#"proto="http",code="500""#, c.http_500),
            (
                r#"proto="udp",reason="bad_connection_id""#,
                c.udp_bad_connection_id,
            ),
            (r#"proto="udp",reason="bad_packet""#, c.udp_bad_packets),
            (r#"proto="websocket",reason="failure""#, c.ws_errors),
        ],
    );
    family(
        "ferrotracker_limited_total",
        "counter",
        "Announces held back by a store limit: refused (torrent or memory limit), refused because the address (IPv6: /64) has tracker.max_peers_per_ip peers in the torrent, or answered without storing the peer (peers per torrent or memory limit).",
        &[
            (r#"what="refused""#, c.refused_full),
            (r#"what="address_limit""#, c.refused_address),
            (r#"what="peer_not_stored""#, c.peers_not_stored),
        ],
    );
    family(
        "ferrotracker_memory_limit_bytes",
        "gauge",
        "The swarm's memory ceiling (tracker.max_memory_mb, by default half of physical memory or of the cgroup limit); 0 = none.",
        &[("", if s.memory.limit == u64::MAX { 0 } else { s.memory.limit })],
    );
    family(
        "ferrotracker_memory_estimated_bytes",
        "gauge",
        "The store's estimate of its heap (torrents and peers), which the ceiling bounds.",
        &[("", s.memory.estimated)],
    );
    family(
        "ferrotracker_refused_total",
        "counter",
        "Clients turned away by a connection or rate limit: HTTP connections answered 503 at accept (total or per-address limit), HTTP requests answered 429 and UDP datagrams dropped by the per-address rate limit, full scrapes and stats streams answered 503 (http.max_streams) or 429 (tracker.full_scrape_interval).",
        &[
            (r#"limit="connections""#, c.conn_limited),
            (r#"limit="connections_per_ip""#, c.conn_limited_ip),
            (r#"limit="rate",proto="http""#, c.http_rate_limited),
            (r#"limit="rate",proto="udp""#, c.udp_rate_limited),
            (r#"limit="streams""#, c.streams_refused),
            (r#"limit="full_scrape_interval""#, c.full_scrapes_too_soon),
        ],
    );
    family(
        "ferrotracker_http_timeouts_total",
        "counter",
        "HTTP connections closed by a timeout: idle (http.idle_timeout) or a request head too slow (http.request_timeout); a TLS handshake or PROXY header cut short by a timeout is counted in its own family instead.",
        &[
            (r#"kind="idle""#, c.http_idle_timeouts),
            (r#"kind="request""#, c.http_request_timeouts),
        ],
    );
    family(
        "ferrotracker_proxy_protocol_headers_total",
        "counter",
        "PROXY protocol headers taken from trusted proxies (http.proxy_protocol).",
        &[("", c.proxy_headers)],
    );
    family(
        "ferrotracker_proxy_protocol_refused_total",
        "counter",
        "HTTP connections closed by the PROXY protocol stage: from a trusted proxy without a header (missing), with a malformed one (invalid) or one that did not come within http.request_timeout (timeout); a header from an address that is not a trusted proxy (untrusted).",
        &[
            (r#"reason="missing""#, c.proxy_refused_missing),
            (r#"reason="invalid""#, c.proxy_refused_invalid),
            (r#"reason="timeout""#, c.proxy_refused_timeout),
            (r#"reason="untrusted""#, c.proxy_refused_untrusted),
        ],
    );
    family(
        "ferrotracker_tls_handshake_failures_total",
        "counter",
        "TLS connections closed before their handshake completed: a handshake error or the client gone (error), or a timeout (timeout: the shorter of http.request_timeout and http.idle_timeout after accept; not counted in ferrotracker_http_timeouts_total).",
        &[
            (r#"reason="error""#, c.tls_handshake_failures),
            (r#"reason="timeout""#, c.tls_handshake_timeouts),
        ],
    );
    family(
        "ferrotracker_accept_errors_total",
        "counter",
        "Failed accept calls (e.g. EMFILE: out of file descriptors).",
        &[("", c.accept_errors)],
    );
    family(
        "ferrotracker_tcp_connections_total",
        "counter",
        "TCP connections accepted.",
        &[("", c.tcp_accepts)],
    );
    family(
        "ferrotracker_udp_packets_total",
        "counter",
        "UDP datagrams received.",
        &[("", c.udp_packets)],
    );
    family(
        "ferrotracker_completed_total",
        "counter",
        "Completed events (event=completed from a seeder).",
        &[("", c.completed)],
    );
    family(
        "ferrotracker_full_scrape_bytes_total",
        "counter",
        "Body bytes sent for full scrapes, tpbs and statedumps (after compression).",
        &[("", c.full_scrape_bytes)],
    );
    family(
        "ferrotracker_torrents",
        "gauge",
        "Torrents in the store.",
        &[("", t.torrents)],
    );
    family(
        "ferrotracker_peers",
        "gauge",
        "Peers in the store: UDP/HTTP peers by address family, and WebTorrent peers (announced over a WebSocket, reached through it, no address handed out).",
        &[
            (r#"family="ipv4""#, t.peers4),
            (r#"family="ipv6""#, t.peers6),
            (r#"family="webtorrent""#, t.peers_ws),
        ],
    );
    family(
        "ferrotracker_webtorrent_seeders",
        "gauge",
        "Seeding WebTorrent peers in the store (within ferrotracker_seeders).",
        &[("", t.seeders_ws)],
    );
    family(
        "ferrotracker_webtorrent_relayed_total",
        "counter",
        "WebRTC signals relayed between WebTorrent peers: offers handed to other peers of a torrent, answers handed back to their offerers.",
        &[
            (r#"kind="offer""#, c.ws_offers_relayed),
            (r#"kind="answer""#, c.ws_answers_relayed),
        ],
    );
    family(
        "ferrotracker_webtorrent_connections",
        "gauge",
        "Open WebSocket (WebTorrent) connections.",
        &[("", c.ws_opened.saturating_sub(c.ws_closed))],
    );
    family(
        "ferrotracker_webtorrent_connections_total",
        "counter",
        "WebSocket connections opened and closed.",
        &[
            (r#"event="opened""#, c.ws_opened),
            (r#"event="closed""#, c.ws_closed),
        ],
    );
    family(
        "ferrotracker_webtorrent_closed_total",
        "counter",
        "WebSocket connections the tracker closed: idle for webtorrent.idle_timeout, a protocol error (binary, oversize or malformed message), or the rate limit.",
        &[
            (r#"reason="idle""#, c.ws_idle_timeouts),
            (r#"reason="protocol_error""#, c.ws_protocol_errors),
            (r#"reason="rate_limited""#, c.ws_rate_limited),
        ],
    );
    family(
        "ferrotracker_webtorrent_relays_dropped_total",
        "counter",
        "Relayed offers and answers dropped: the receiving connection had too much unsent, or its worker's inbox was full.",
        &[("", c.ws_relays_dropped)],
    );
    family(
        "ferrotracker_webtorrent_replies_dropped_total",
        "counter",
        "Replies to WebTorrent messages dropped: the connection had half of webtorrent.max_backlog unsent.",
        &[("", c.ws_replies_dropped)],
    );
    family(
        "ferrotracker_webtorrent_answers_dropped_total",
        "counter",
        "WebRTC answers not relayed: not to an offer the connection received in the last 120 s from that peer in that torrent (refused, with a failure reason), or whose offerer had left (offerer_gone).",
        &[
            (r#"reason="refused""#, c.ws_answers_refused),
            (r#"reason="offerer_gone""#, c.ws_answers_lost),
        ],
    );
    family(
        "ferrotracker_seeders",
        "gauge",
        "Seeding peers in the store.",
        &[("", t.seeders)],
    );
    family(
        "ferrotracker_leechers",
        "gauge",
        "Leeching peers in the store.",
        &[("", t.peers().saturating_sub(t.seeders))],
    );
    family(
        "ferrotracker_downloaded",
        "gauge",
        "Sum of the downloaded counts of the torrents in the store.",
        &[("", t.downloaded)],
    );
    let y = &c.sync;
    family(
        "ferrotracker_livesync_packets_total",
        "counter",
        "Live-sync packets sent to and accepted from other cluster nodes.",
        &[
            (r#"direction="sent""#, y.packets_sent),
            (r#"direction="received""#, y.packets_received),
        ],
    );
    family(
        "ferrotracker_livesync_peers_total",
        "counter",
        "Peers (entries) in live-sync packets sent and accepted.",
        &[
            (r#"direction="sent""#, y.peers_sent),
            (r#"direction="received""#, y.peers_received),
        ],
    );
    family(
        "ferrotracker_livesync_refused_total",
        "counter",
        "Live-sync packets refused: from an address that is not a node, our own echo, a bad or missing MAC, a time outside the window (stale), a keyed packet already seen (replay), larger than 1480 bytes (oversize), not a live-sync packet.",
        &[
            (r#"reason="source""#, y.refused_source),
            (r#"reason="echo""#, y.refused_echo),
            (r#"reason="mac""#, y.refused_mac),
            (r#"reason="stale""#, y.refused_stale),
            (r#"reason="replay""#, y.refused_replay),
            (r#"reason="oversize""#, y.refused_oversize),
            (r#"reason="malformed""#, y.refused_malformed),
        ],
    );
    family(
        "ferrotracker_livesync_dropped_total",
        "counter",
        "Live-sync entries dropped because the hand-off to the sync thread was full, and datagrams the socket failed to send.",
        &[
            (r#"what="queue_full""#, y.dropped_queue_full),
            (r#"what="send_error""#, y.send_errors),
        ],
    );
    if let Some(a) = s.access {
        family(
            "ferrotracker_access_list_hashes",
            "gauge",
            "Info_hashes of the access list in force: read from the file, and added and deleted through the dynamic-list FIFOs since it was loaded.",
            &[
                (r#"source="file""#, a.file),
                (r#"source="fifo_added""#, a.added),
                (r#"source="fifo_deleted""#, a.deleted),
            ],
        );
    }
    family(
        "ferrotracker_uptime_seconds",
        "gauge",
        "Seconds since start.",
        &[("", s.uptime)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::tests::snap;

    #[test]
    fn metrics_format() {
        let mut out = String::new();
        render_metrics(&snap(), &mut out);
        assert!(out.contains("# TYPE ferrotracker_requests_total counter\n"));
        assert!(
            out.contains("ferrotracker_requests_total{proto=\"http\",kind=\"announce\"} 3600\n")
        );
        assert!(
            out.contains("ferrotracker_requests_total{proto=\"http\",kind=\"full_scrape\"} 2\n")
        );
        assert!(out.contains("ferrotracker_full_scrape_bytes_total 72000\n"));
        assert!(out.contains("ferrotracker_peers{family=\"ipv4\"} 10\n"));
        assert!(out.contains("ferrotracker_seeders 4\n"));
        assert!(out.contains("ferrotracker_leechers 8\n"));
        assert!(out.contains("ferrotracker_torrents 3\n"));
        assert!(out.contains("ferrotracker_completed_total 14\n"));
        assert!(out.contains("ferrotracker_refused_total{limit=\"rate\",proto=\"udp\"} 0\n"));
        assert!(out.contains("ferrotracker_http_timeouts_total{kind=\"request\"} 0\n"));
        assert!(out.contains("ferrotracker_accept_errors_total 0\n"));
        // A handshake cut short by a timeout has its own reason, apart from the errors.
        assert!(out.contains("ferrotracker_tls_handshake_failures_total{reason=\"error\"} 5\n"));
        assert!(out.contains("ferrotracker_tls_handshake_failures_total{reason=\"timeout\"} 6\n"));
        assert!(out.contains("ferrotracker_memory_limit_bytes 1073741824\n"));
        assert!(out.contains("ferrotracker_memory_estimated_bytes 1234\n"));
        assert!(out.contains("ferrotracker_limited_total{what=\"address_limit\"} 0\n"));
        assert!(out.contains("ferrotracker_access_list_hashes{source=\"fifo_added\"} 2\n"));
        let mut open = String::new();
        render_metrics(
            &Snapshot {
                access: None,
                ..snap()
            },
            &mut open,
        );
        assert!(!open.contains("access_list"), "no list, no gauge");
        assert!(
            out.contains("ferrotracker_requests_total{proto=\"websocket\",kind=\"announce\"} 30\n")
        );
        assert!(out.contains("ferrotracker_webtorrent_relayed_total{kind=\"offer\"} 50\n"));
        assert!(
            out.contains("ferrotracker_webtorrent_answers_dropped_total{reason=\"refused\"} 2\n")
        );
        assert!(
            out.contains("ferrotracker_errors_total{proto=\"websocket\",reason=\"failure\"} 4\n")
        );
        // WebTorrent peers: a family of their own, and within the seeders and leechers.
        let mut ws = snap();
        ws.totals.peers_ws = 3;
        ws.totals.seeders_ws = 1;
        ws.totals.seeders += 1;
        let mut out_ws = String::new();
        render_metrics(&ws, &mut out_ws);
        assert!(out_ws.contains("ferrotracker_peers{family=\"ipv4\"} 10\n"));
        assert!(out_ws.contains("ferrotracker_peers{family=\"webtorrent\"} 3\n"));
        assert!(out_ws.contains("ferrotracker_webtorrent_seeders 1\n"));
        assert!(out_ws.contains("ferrotracker_seeders 5\n"));
        assert!(out_ws.contains("ferrotracker_leechers 10\n"));
        for line in out.lines() {
            if line.starts_with('#') {
                assert!(line.starts_with("# HELP ") || line.starts_with("# TYPE "));
                continue;
            }
            let (name, value) = line.rsplit_once(' ').unwrap();
            value.parse::<u64>().unwrap();
            assert!(name.starts_with("ferrotracker_"));
        }
    }
}
