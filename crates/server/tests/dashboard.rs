//! The live dashboard over real sockets: `/dashboard` is one self-contained HTML page,
//! `/dashboard.json` counts the announces, scrapes and errors sent over UDP and HTTP on both
//! families, holds `dashboard.samples` points however long the tracker runs, and both are read
//! under the same rule as `/stats`. Last, headless chromium (Debian's `chromium`; CHROMIUM=path
//! for another) loads the page against a tracker with traffic: the charts it draws show the
//! traffic, and its screenshot is saved as target/dashboard.png. Without chromium that test
//! says so and skips, unless `CI` is set: then it fails (see `require_or_skip`).

mod common;
mod stats_support;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ferrotracker_proto::Event;
use serde_json::Value;

/// One sample a second, so that a test sees several within seconds.
const FAST: &str = "dashboard.interval 1\n";

fn json(addr: SocketAddr) -> Value {
    let r = http_get(addr, "/dashboard.json");
    assert_eq!(r.status, 200, "{}", r.body_str());
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body_str()))
}

fn series<'a>(v: &'a Value, chart: &str, name: &str) -> &'a [Value] {
    v["charts"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == chart))
        .and_then(|c| c["series"].as_array())
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .and_then(|s| s["points"].as_array())
        .unwrap_or_else(|| panic!("no {chart}/{name} in {v}"))
}

/// How many events a rate series counts, from the second point on (the first interval's start
/// is not in the JSON): each point is a rate over the time since the point before it.
fn counted(v: &Value, chart: &str, name: &str) -> u64 {
    let t: Vec<f64> = v["t"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    let points = series(v, chart, name);
    (1..t.len())
        .map(|i| (points[i].as_f64().unwrap() * (t[i] - t[i - 1]) / 1000.0).round() as u64)
        .sum()
}

/// The level a gauge series shows now.
fn level(v: &Value, chart: &str, name: &str) -> u64 {
    series(v, chart, name)
        .last()
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn points(v: &Value) -> usize {
    v["t"].as_array().map_or(0, Vec::len)
}

/// Waits for `n` points: the samples taken before then end before anything the test sends.
fn wait_for_points(addr: SocketAddr, n: usize) -> Value {
    poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
        let v = json(addr);
        (points(&v) >= n).then_some(v)
    })
    .unwrap_or_else(|| panic!("fewer than {n} points: {}", json(addr)))
}

#[test]
fn the_page_is_one_self_contained_html_file() {
    let t = Tracker::v4();
    let r = http_get(t.http4(), "/dashboard");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let page = r.body_str();
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(page.trim_end().ends_with("</html>"));
    // It fetches its data relative to itself, and names nothing else to load.
    assert!(page.contains("fetch(\"dashboard.json\""));
    let lower = page.to_ascii_lowercase();
    for absent in [
        "http://", "https://", "src=", "@import", "url(", "//cdn", "<iframe",
    ] {
        assert!(!lower.contains(absent), "the page holds `{absent}`");
    }
    for href in lower.split("href=\"").skip(1) {
        let target = href.split('"').next().unwrap_or_default();
        assert!(
            ["data:,", "dashboard.json"].contains(&target),
            "href {target}"
        );
    }

    let r = http_get(t.http4(), "/dashboard.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (v["interval"].as_u64(), v["samples"].as_u64()),
        (Some(5), Some(720))
    );
}

#[test]
fn the_json_counts_the_announces_scrapes_and_errors_sent() {
    let config = format!("{FAST}dashboard.samples 60\n");
    let t = Tracker::start(DUAL, Some(&config));
    let before = wait_for_points(t.http4(), 1);
    assert_eq!(counted(&before, "announces", "udp"), 0);

    // UDP: 7 peers of hash 1 over IPv4 (2 seeding), 2 of hash 3 over IPv6; HTTP: 5 peers of
    // hash 2 over IPv4 (1 seeding), 3 over IPv6.
    let mut u4 = Udp::new(t.udp4());
    let mut u6 = Udp::new(t.udp6());
    for port in 0..7 {
        u4.announce(
            &hash(1),
            7000 + port,
            if port < 2 { 0 } else { 9 },
            Event::Started,
            0,
        );
    }
    for port in 0..2 {
        u6.announce(&hash(3), 7100 + port, 9, Event::Started, 0);
    }
    for port in 0..5 {
        let left = if port == 0 { 0 } else { 9 };
        assert!(http_announce(t.http4(), &hash(2), 7200 + port, left, "").interval > 0);
    }
    for port in 0..3 {
        assert!(http_announce(t.http6(), &hash(2), 7300 + port, 9, "").interval > 0);
    }
    // Scrapes: 2 over UDP, 1 over HTTP; errors: 3 bad UDP packets, 1 HTTP 404.
    u4.scrape(&[hash(1)]);
    u6.scrape(&[hash(3)]);
    assert_eq!(http_get(t.http4(), &scrape_target(&[hash(2)])).status, 200);
    for _ in 0..3 {
        u4.send_raw(b"not a BEP 15 request");
    }
    assert_eq!(http_get(t.http4(), "/robots.txt").status, 404);

    let want = |v: &Value| {
        [
            counted(v, "announces", "udp"),
            counted(v, "announces", "http"),
            counted(v, "announces", "websocket"),
            counted(v, "scrapes", "udp"),
            counted(v, "scrapes", "http"),
            counted(v, "errors", "udp"),
            counted(v, "errors", "http"),
        ]
    };
    let v = poll_until(Duration::from_secs(15), Duration::from_millis(200), || {
        let v = json(t.http4());
        (want(&v) == [9, 8, 0, 2, 1, 3, 1] && !v["top"].as_array()?.is_empty()).then_some(v)
    })
    .unwrap_or_else(|| {
        let v = json(t.http4());
        panic!("counted {:?}: {v}", want(&v))
    });
    assert_eq!(level(&v, "peers", "seeders"), 3);
    assert_eq!(level(&v, "peers", "leechers"), 14);
    assert_eq!(level(&v, "families", "ipv4"), 12);
    assert_eq!(level(&v, "families", "ipv6"), 5);
    assert_eq!(level(&v, "families", "webtorrent"), 0);
    assert_eq!(level(&v, "torrents", "torrents"), 3);
    assert_eq!(counted(&v, "refusals", "address_limit"), 0);
    // Top torrents by peers: hash 2 (8), hash 1 (7), hash 3 (2).
    let hex_of = |n: u8| hex(&hash(n)).to_ascii_lowercase();
    let top = &v["top"];
    assert_eq!(top.as_array().map(Vec::len), Some(3), "{top}");
    assert_eq!(top[0]["info_hash"], hex_of(2).as_str());
    assert_eq!(
        (top[0]["seeders"].as_u64(), top[0]["leechers"].as_u64()),
        (Some(1), Some(7))
    );
    assert_eq!(top[1]["info_hash"], hex_of(1).as_str());
    assert_eq!(top[2]["info_hash"], hex_of(3).as_str());
    assert_eq!(top[2]["completed"], 0);
}

#[test]
fn the_json_holds_its_samples_however_long_it_runs() {
    const SAMPLES: usize = 3;
    let config = format!("{FAST}dashboard.samples {SAMPLES}\n");
    let t = Tracker::start(V4, Some(&config));
    let mut u = Udp::new(t.udp4());
    let mut seen = Vec::new();
    // Past three times the window: the ring has wrapped at least twice.
    let end = std::time::Instant::now() + Duration::from_secs(3 * SAMPLES as u64 + 1);
    let mut port = 0;
    while std::time::Instant::now() < end {
        port += 1;
        u.announce(&hash(port as u8), 6000 + port, 9, Event::Started, 0);
        let r = http_get(t.http4(), "/dashboard.json");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        seen.push((points(&v), r.body.len()));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen.iter().all(|&(n, _)| n <= SAMPLES), "{seen:?}");
    assert_eq!(seen.last().map(|s| s.0), Some(SAMPLES), "{seen:?}");
    // 25 series and the times of 3 points, 20 digits at most each, the top 10, the names.
    let bound = 26 * SAMPLES * 21 + 10 * 120 + 1500;
    let largest = seen.iter().map(|s| s.1).max().unwrap_or(0);
    assert!(largest <= bound, "{largest} bytes: {seen:?}");
}

/// Each request of `paths` from `local` (None: 127.0.0.1) with `headers`, answered as
/// `/stats` is.
fn assert_read_as_stats(t: &Tracker, headers: &str, local: Option<IpAddr>, want: u16) {
    for path in ["/stats", "/metrics", "/dashboard", "/dashboard.json"] {
        let r = stats_support::get(t.http4(), path, headers, local);
        assert_eq!(r.status, want, "{path} {headers:?} from {local:?}");
    }
}

#[test]
fn the_dashboard_is_read_as_stats_is() {
    let other: Option<IpAddr> = Some("127.0.0.2".parse().unwrap());
    let xff = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    // No nets: loopback reads.
    let t = Tracker::v4_with_config("");
    assert_read_as_stats(&t, "", None, 200);
    assert_read_as_stats(&t, "", other, 200);
    drop(t);
    // A net elsewhere only: loopback is refused.
    let t = Tracker::v4_with_config("access.stats 10.0.0.0/8\n");
    assert_read_as_stats(&t, "", None, 403);
    drop(t);
    // -A and access.stats nets read; others don't.
    let t = Tracker::v4_with_flags(&["-A", "127.0.0.1"]);
    assert_read_as_stats(&t, "", None, 200);
    assert_read_as_stats(&t, "", other, 403);
    drop(t);
    // Behind a trusted proxy, the client it names decides.
    let t = Tracker::v4_with_config("access.proxy 127.0.0.1\naccess.stats 203.0.113.0/24\n");
    assert_read_as_stats(&t, &xff("203.0.113.9"), None, 200);
    assert_read_as_stats(&t, &xff("203.0.113.9, 198.51.100.7"), None, 403);
    assert_read_as_stats(&t, "", None, 403);
    assert_read_as_stats(&t, &xff("203.0.113.9"), other, 403);
    drop(t);
    let t = Tracker::v4_with_config("access.stats_open on\naccess.stats 10.0.0.0/8\n");
    assert_read_as_stats(&t, "", other, 200);
    drop(t);

    // Off: not found, and /stats as before.
    let t = Tracker::v4_with_config("dashboard off\n");
    assert_eq!(http_get(t.http4(), "/stats").status, 200);
    for path in ["/dashboard", "/dashboard.json"] {
        assert_eq!(http_get(t.http4(), path).status, 404, "{path}");
    }
    // A stats page configured at the dashboard's path is the stats page.
    let t = Tracker::v4_with_config("access.stats_path dashboard\n");
    let r = http_get(t.http4(), "/dashboard");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(http_get(t.http4(), "/dashboard.json").status, 200);
}

// ---------------------------------------------------------------- headless chromium

/// The chromium to run: `CHROMIUM`, else `chromium` on PATH.
fn chromium() -> Result<PathBuf, String> {
    let bin = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from);
    match Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(bin),
        Ok(s) => Err(format!("{} --version: {s}", bin.display())),
        Err(e) => Err(format!("{}: {e} (apt-get install chromium)", bin.display())),
    }
}

/// Runs headless chromium on `url` with `args`, killed (by its PID) past a deadline, and
/// returns what it printed on stdout.
fn run_chromium(bin: &PathBuf, profile: &TempDir, args: &[String], url: &str) -> String {
    let ran = run_command(
        Command::new(bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=1280,1600",
                // Virtual time: the page's first fetch and drawing are done before it ends.
                "--virtual-time-budget=4000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(url),
        Duration::from_secs(60),
    );
    assert!(
        ran.status.is_some_and(|s| s.success()),
        "chromium {args:?} {url}: {:?}",
        ran.status
    );
    ran.stdout
}

/// The attributes of the first `<tag` element holding `marker` in its start tag.
fn element<'a>(dom: &'a str, tag: &str, marker: &str) -> &'a str {
    dom.split(&format!("<{tag} "))
        .skip(1)
        .map(|rest| rest.split('>').next().unwrap_or_default())
        .find(|attrs| attrs.contains(marker))
        .unwrap_or_else(|| panic!("no <{tag} with {marker} in the page as drawn"))
}

fn attr(attrs: &str, name: &str) -> f64 {
    attrs
        .split(&format!(" {name}=\""))
        .nth(1)
        .and_then(|v| v.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {name} in {attrs}"))
}

/// A chart's `series` line as drawn: (points, max, last).
fn drawn(dom: &str, chart: &str, series: &str) -> (f64, f64, f64) {
    let start = dom
        .find(&format!("<svg class=\"chart\" data-chart=\"{chart}\""))
        .unwrap_or_else(|| panic!("no {chart} chart drawn"));
    let svg = &dom[start..];
    let svg = &svg[..svg.find("</svg>").unwrap_or(svg.len())];
    let a = element(svg, "path", &format!("data-series=\"{series}\""));
    (
        attr(a, "data-points"),
        attr(a, "data-max"),
        attr(a, "data-last"),
    )
}

/// Announces, scrapes and some refused requests over UDP and HTTP, on both families, until
/// `stop`: 24 torrents with 1 to 47 peers each (a third seeding), the largest over
/// `tracker.max_peers_per_ip`.
fn traffic(t: &Tracker, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let (udp4, udp6, http4, http6) = (t.udp4(), t.udp6(), t.http4(), t.http6());
    std::thread::spawn(move || {
        let (mut u4, mut u6) = (Udp::new(udp4), Udp::new(udp6));
        let mut announced = [0u16; 25];
        let mut i: u32 = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            // Torrent n has up to 2n - 1 peers (ports), every third one seeding, each reached
            // by every protocol and family (a scrambled n: i % 24 would tie n to i % 4).
            let n = (i.wrapping_mul(2_654_435_761) >> 20) as u8 % 24 + 1;
            let count = &mut announced[usize::from(n)];
            *count = count.wrapping_add(1);
            let port = 10_000 + *count % (u16::from(n) * 2 - 1);
            let left = if port % 3 == 0 { 0 } else { 100 };
            // Raw: an announce over the per-address limit is answered with an error packet.
            match i % 4 {
                0 | 1 => {
                    let req = u4.announce_request(&hash(n), port, left, Event::None, 10);
                    u4.announce_raw(&req);
                }
                2 => {
                    let req = u6.announce_request(&hash(n), port, left, Event::None, 10);
                    u6.announce_raw(&req);
                }
                _ => {
                    let addr = if i % 8 == 3 { http4 } else { http6 };
                    http_get(addr, &announce_target(&hash(n), port, left, ""));
                }
            }
            if i % 7 == 0 {
                u4.scrape(&[hash(n)]);
            }
            if i % 29 == 0 {
                u4.send_raw(b"not a BEP 15 request");
                http_get(http4, "/robots.txt");
            }
            std::thread::sleep(Duration::from_millis(8));
        }
    })
}

#[test]
fn headless_chromium_draws_the_traffic() {
    let Some(bin) = require_or_skip("chromium (or CHROMIUM=path)", chromium()) else {
        return;
    };
    let config = format!("{FAST}dashboard.samples 40\ntracker.max_peers_per_ip 20\n");
    let t = Tracker::start(DUAL, Some(&config));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = traffic(&t, Arc::clone(&stop));
    // Enough points for lines, the top list gathered, and traffic in the last interval.
    let ready = poll_until(Duration::from_secs(30), Duration::from_millis(250), || {
        let v = json(t.http4());
        let moving = ["udp", "http"].iter().all(|p| {
            series(&v, "announces", p)
                .last()
                .and_then(Value::as_f64)
                .is_some_and(|r| r > 0.0)
        });
        (points(&v) >= 12 && moving && v["top"].as_array()?.len() == 10).then_some(v)
    });
    assert!(ready.is_some(), "no traffic in {}", json(t.http4()));

    let url = format!("http://{}/dashboard", t.http4());
    let profile = TempDir::new("chromium");
    let dom = run_chromium(&bin, &profile, &["--dump-dom".into()], &url);
    let chart = element(&dom, "svg", "data-chart=\"announces\"");
    assert!(attr(chart, "data-points") >= 12.0, "{chart}");
    for (chart, series) in [
        ("announces", "udp"),
        ("announces", "http"),
        ("scrapes", "udp"),
        ("errors", "udp"),
        ("errors", "http"),
        ("peers", "seeders"),
        ("peers", "leechers"),
        ("families", "ipv4"),
        ("families", "ipv6"),
        ("torrents", "torrents"),
        ("refusals", "address_limit"),
    ] {
        let (points, max, _) = drawn(&dom, chart, series);
        assert!(
            points >= 12.0 && max > 0.0,
            "{chart}/{series}: {points} points, max {max}"
        );
    }
    let (_, _, torrents) = drawn(&dom, "torrents", "torrents");
    assert_eq!(torrents, 24.0);
    for (chart, idle) in [("announces", "websocket"), ("families", "webtorrent")] {
        assert_eq!(drawn(&dom, chart, idle).1, 0.0, "{chart}/{idle}");
    }
    assert!(attr(element(&dom, "div", "id=\"tile-announces\""), "data-value") > 0.0);
    assert_eq!(
        attr(element(&dom, "table", "id=\"top\""), "data-rows"),
        10.0
    );
    assert!(dom.contains("class=\"live\""), "the status says live");

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &bin,
        &profile,
        &[format!("--screenshot={}", shot.display())],
        &url,
    );
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is no PNG",
        shot.display()
    );
    // A page without its charts is a few kilobytes of flat colour.
    assert!(
        png.len() > 40_000,
        "{}: {} bytes",
        shot.display(),
        png.len()
    );
    eprintln!("dashboard screenshot: {}", shot.display());
}
