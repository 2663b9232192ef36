//! `/stats` and `/metrics` over real sockets: modes and formats, the access rules (403 from an
//! address that is not blessed), the configurable path, and the Prometheus format.

mod common;
mod stats_support;

use std::net::IpAddr;

use stats_support::*;

const OTHER: &str = "127.0.0.2";

fn other() -> Option<IpAddr> {
    Some(OTHER.parse().unwrap())
}

#[test]
fn modes_over_http() {
    let t = Tracker::start(&[], "tracker.workers 1\n");
    for i in 0..3 {
        assert_eq!(announce(t.http, i, 7000, 5, ""), 200);
    }
    assert_eq!(announce(t.http, 0, 7001, 0, "&event=completed"), 200);
    let page = |q: &str| {
        let r = get(t.http, &format!("/stats{q}"), "", None);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        r.text()
    };
    assert_eq!(
        page(""),
        "4\n1\nopentracker serving 3 torrents\nopentracker"
    );
    assert_eq!(page("?mode=peer"), page(""));
    assert_eq!(
        page("?mode=torr"),
        "3\n0\nopentracker serving 3 torrents\nopentracker"
    );
    let tcp4 = page("?mode=tcp4");
    let lines: Vec<&str> = tcp4.split('\n').collect();
    assert_eq!(lines.len(), 4, "{tcp4:?}");
    assert!(lines[0].parse::<u64>().unwrap() >= 4);
    assert_eq!(lines[1], "4", "HTTP announces");
    assert!(lines[2].ends_with(" hours)"));
    assert!(lines[3].starts_with("opentracker tcp4 stats, "));
    assert!(page("?mode=conn").contains("opentracker connections, "));
    assert!(page("?mode=udp4").starts_with("0\n0\n"));
    assert!(page("?mode=scrp").ends_with("scrape/s (tcp and udp)"));
    assert!(page("?mode=completed").starts_with("1\n0\n"));
    assert!(page("?mode=syncs").starts_with("0\n0\n"));
    // The same peer again, at once: one re-announce at age 0 minutes.
    assert_eq!(
        page("?mode=renew"),
        (0..45).map(|i| format!("{i:02} 0\n")).collect::<String>()
    );
    assert_eq!(announce(t.http, 1, 7000, 5, "&numwant=0"), 200);
    let renew = page("?mode=renew");
    assert_eq!(renew.lines().count(), 45);
    assert!(renew.starts_with("00 1\n01 0\n"), "{renew}");
    assert_eq!(renew.matches(" 0\n").count(), 44);
    assert!(page("?mode=version").starts_with("ferrotracker "));
    let nw = page("?mode=numwants");
    assert_eq!(nw.lines().count(), 201);
    assert!(nw.contains("\n050 => 4\n"), "default numwant counted");
    let top = page("?mode=top10");
    assert!(top.starts_with("Top 10 torrents by peers:\n\t2\t"), "{top}");
    assert!(top.contains("Top 10 torrents by seeds:\n\t1\t"));
    assert!(top.contains("Top 10 torrents by leechers:\n"));
    assert!(page("?mode=top100").starts_with("Top 100 torrents by peers:\n"));
    assert_eq!(
        page("?mode=s24s"),
        "Networks, limit /28:\n00000004: 127.0.0.0\n\nNetworks, limit /24:\n00000004: 127.0.0.0\n\n"
    );
    let x = get(t.http, "/stats?mode=everything", "", None);
    assert_eq!(x.header("content-type").as_deref(), Some("text/xml"));
    assert!(x
        .text()
        .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stats>\n"));
    assert!(x
        .text()
        .contains("<peers>\n    <count>4</count>\n  </peers>"));
    assert!(x.text().ends_with("</stats>"));

    // Streamed modes.
    let txt = get(t.http, "/stats?mode=tpbs&format=txt", "", None);
    assert_eq!(txt.header("transfer-encoding").as_deref(), Some("chunked"));
    let body = txt.text();
    assert_eq!(body.lines().count(), 3);
    assert!(body
        .lines()
        .all(|l| l.len() > 41 && l.as_bytes()[40] == b':'));
    let ben = get(t.http, "/stats?mode=tpbs", "", None);
    assert_eq!(
        ben.body,
        get(t.http, "/scrape", "", None).body,
        "tpbs defaults to ben"
    );
    let bin = get(t.http, "/stats?mode=tpbs&format=bin", "", None);
    assert_eq!(bin.body.len(), 3 * 28);
    let gz = get(
        t.http,
        "/stats?mode=statedump",
        "Accept-Encoding: gzip\r\n",
        None,
    );
    assert_eq!(gz.header("content-encoding").as_deref(), Some("gzip"));
    let dump = String::from_utf8(gunzip(&gz.body)).unwrap();
    let minutes_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60;
    for line in dump.lines() {
        let parts: Vec<&str> = line.split(':').collect();
        assert_eq!(parts.len(), 3, "{line}");
        assert_eq!(parts[0].len(), 40);
        assert!(parts[0]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        let base: u64 = parts[1].parse().unwrap();
        assert!(base + 2 >= minutes_now && base <= minutes_now + 1, "{line}");
    }
    assert_eq!(dump.lines().filter(|l| l.ends_with(":1")).count(), 1);
    // One full scrape (`/scrape` above, x1000 as opentracker); the bytes of every stream.
    let fscr = page("?mode=fscr");
    assert_eq!(fscr.split('\n').next(), Some("1000"));
    let bytes: u64 = fscr.split('\n').nth(1).unwrap().parse().unwrap();
    assert!(bytes > 0, "{fscr}");

    // Errors.
    assert_eq!(get(t.http, "/stats?mode=nope", "", None).status, 400);
    assert_eq!(
        get(t.http, "/stats?mode=tpbs&format=xml", "", None).status,
        400
    );
    assert_eq!(get(t.http, "/stats?info_hash=x", "", None).status, 400);
    assert_eq!(get(t.http, "/stats?mode=fulllog", "", None).status, 400);
    let herr = page("?mode=herr");
    assert!(
        herr.starts_with("302 RED 0\n400 ... 0\n400 PAR 4\n"),
        "{herr}"
    );
    assert_eq!(herr.lines().count(), 7);
}

#[test]
fn stats_restricted_to_blessed_nets() {
    let t = Tracker::start(&["-A", "127.0.0.1"], "tracker.workers 1\n");
    assert_eq!(get(t.http, "/stats", "", None).status, 200);
    assert_eq!(get(t.http, "/metrics", "", None).status, 200);
    let r = get(t.http, "/stats?mode=everything", "", other());
    assert_eq!(r.status, 403);
    assert!(r.head.starts_with("HTTP/1.1 403 "));
    assert_eq!(
        get(t.http, "/stats?mode=statedump", "", other()).status,
        403
    );
    assert_eq!(get(t.http, "/metrics", "", other()).status, 403);
    // Announces from there are fine.
    let ok = get(
        t.http,
        &format!(
            "/announce?info_hash={}&port=1&left=0",
            percent_encode(&hash(1))
        ),
        "",
        other(),
    );
    assert_eq!(ok.status, 200);
    // The 403s are counted.
    let herr = get(t.http, "/stats?mode=herr", "", None).text();
    assert!(herr.lines().any(|l| l == "403 IP  3"), "{herr}");
}

#[test]
fn default_is_loopback_and_open_switch() {
    // No nets: loopback (any 127/8 address) may read.
    let t = Tracker::start(&[], "");
    assert_eq!(get(t.http, "/stats", "", other()).status, 200);
    drop(t);
    // Only a net elsewhere: loopback is refused.
    let t = Tracker::start(&[], "access.stats 10.0.0.0/8\n");
    assert_eq!(get(t.http, "/stats", "", None).status, 403);
    drop(t);
    let t = Tracker::start(&["-A", "127.0.0.1"], "access.stats_open on\n");
    assert_eq!(get(t.http, "/stats", "", other()).status, 200);
}

#[test]
fn behind_a_same_host_proxy_the_forwarded_client_decides() {
    // The proxy connects from 127.0.0.1, which may read stats by default (loopback): the
    // client it names in X-Forwarded-For is checked instead.
    let t = Tracker::start(&[], "access.proxy 127.0.0.1\n");
    let xff = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    for path in ["/stats", "/metrics"] {
        assert_eq!(
            get(t.http, path, &xff("203.0.113.9"), None).status,
            403,
            "{path}"
        );
        // A client on the proxy's own host: loopback.
        assert_eq!(
            get(t.http, path, &xff("127.0.0.1"), None).status,
            200,
            "{path}"
        );
        // The proxy without the header (a proxy that forgets it would pass every client off
        // as loopback): only where its address is granted explicitly.
        assert_eq!(get(t.http, path, "", None).status, 403, "{path}");
        // A header that names no client is refused, not taken as the proxy's own request.
        assert_eq!(
            get(t.http, path, &xff("unknown"), None).status,
            403,
            "{path}"
        );
        // Only the proxy's header counts: from 127.0.0.2 the socket address decides.
        assert_eq!(
            get(t.http, path, &xff("203.0.113.9"), other()).status,
            200,
            "{path}"
        );
    }
    drop(t);

    // Stats allowed to a remote net only: its clients get them through the proxy, and the
    // proxy's host itself does not.
    let t = Tracker::start(&[], "access.proxy 127.0.0.1\naccess.stats 203.0.113.0/24\n");
    for path in ["/stats", "/metrics"] {
        assert_eq!(
            get(t.http, path, &xff("203.0.113.9"), None).status,
            200,
            "{path}"
        );
        // The client forged the left entry; the proxy appended the real one.
        assert_eq!(
            get(t.http, path, &xff("203.0.113.9, 198.51.100.7"), None).status,
            403,
            "{path}"
        );
        assert_eq!(get(t.http, path, "", None).status, 403, "{path}");
        assert_eq!(
            get(t.http, path, &xff("203.0.113.9"), other()).status,
            403,
            "{path}"
        );
    }
    drop(t);

    // The same-host proxy granted explicitly reads stats without the header (a local scraper);
    // another proxy not granted does not. (A proxy on another host naming a loopback client is
    // refused too, in `client_ip`'s unit tests: over loopback every proxy is on this host.)
    let t = Tracker::start(
        &[],
        "access.proxy 127.0.0.1\naccess.proxy 127.0.0.2\naccess.stats 127.0.0.1\n",
    );
    for path in ["/stats", "/metrics"] {
        assert_eq!(get(t.http, path, "", None).status, 200, "{path}");
        assert_eq!(get(t.http, path, "", other()).status, 403, "{path}");
    }
}

#[test]
fn custom_stats_path() {
    let t = Tracker::start(&[], "access.stats_path my_stats\n");
    assert_eq!(get(t.http, "/stats", "", None).status, 404);
    let r = get(t.http, "/my_stats?mode=torr", "", None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "0\n0\nopentracker serving 0 torrents\nopentracker"
    );
}

#[test]
fn metrics_format() {
    let t = Tracker::start(&[], "tracker.workers 1\n");
    assert_eq!(announce(t.http, 1, 7000, 0, "&event=completed"), 200);
    let r = get(t.http, "/metrics", "", None);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text();
    let mut samples = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            assert!(c.starts_with("TYPE ") || c.starts_with("HELP "), "{line}");
            continue;
        }
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let metric = name.split('{').next().unwrap();
        assert!(
            metric
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{line}"
        );
        assert!(
            text.contains(&format!("# TYPE {metric} ")),
            "{metric} has a TYPE"
        );
        samples.insert(name.to_string(), value);
    }
    assert_eq!(
        samples["ferrotracker_requests_total{proto=\"http\",kind=\"announce\"}"],
        1.0
    );
    assert_eq!(samples["ferrotracker_torrents"], 1.0);
    assert_eq!(samples["ferrotracker_seeders"], 1.0);
    assert_eq!(samples["ferrotracker_completed_total"], 1.0);
    assert_eq!(samples["ferrotracker_peers{family=\"ipv4\"}"], 1.0);
    assert!(samples.contains_key("ferrotracker_full_scrape_bytes_total"));
    assert!(samples
        .contains_key("ferrotracker_errors_total{proto=\"udp\",reason=\"bad_connection_id\"}"));
}

/// One `ferrotracker_requests_total` sample (or any other) of a `/metrics` page.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

/// Counters read from any worker are current (every announce answered before the read is in it)
/// and so never lower than an earlier read: each announce and each read goes over a connection
/// of its own, which the kernel hands to any of the four workers.
#[test]
fn counters_current_and_monotonic_across_workers() {
    let t = Tracker::start(&[], "tracker.workers 4\n");
    let (mut accepts, mut metric_accepts) = (0u64, 0u64);
    for i in 1..=300u64 {
        assert_eq!(announce(t.http, i as u32, 7000, 0, ""), 200);
        let r = get(t.http, "/stats?mode=tcp4", "", None);
        assert_eq!(r.status, 200);
        let text = r.text();
        let mut lines = text.lines().map(|l| l.parse::<u64>().unwrap());
        let (a, announces) = (lines.next().unwrap(), lines.next().unwrap());
        assert_eq!(announces, i, "tcp4 after {i} announces:\n{text}");
        assert!(a >= accepts, "tcp4 accepts went back from {accepts} to {a}");
        accepts = a;

        let m = get(t.http, "/metrics", "", None).text();
        let announces = metric(
            &m,
            "ferrotracker_requests_total{proto=\"http\",kind=\"announce\"}",
        );
        assert_eq!(announces, i, "/metrics after {i} announces");
        let a = metric(&m, "ferrotracker_tcp_connections_total");
        assert!(
            a >= metric_accepts,
            "/metrics accepts went back from {metric_accepts} to {a}"
        );
        metric_accepts = a;
    }
}
