//! Operating the tracker as a daemon: the Grafana dashboard and the Prometheus alert rules in
//! `contrib/` name only metrics that `/metrics` exposes (so renaming a metric fails here), the
//! rules pass `promtool check rules`, and the log fits journald: `log.format json` writes one
//! JSON object per line, `log.level` filters with `RUST_LOG` taking precedence, and under
//! systemd's journal the text lines carry no timestamp.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tls::{KeyType, TestPki};
use common::*;
use ferrotracker_proto::Event;

fn contrib(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contrib")
        .join(file)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------- metric names

#[test]
fn alert_rules_pass_promtool() {
    let check = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run promtool ({e})"))
        .and_then(|s| {
            s.success()
                .then_some(())
                .ok_or("promtool --version failed".into())
        });
    if require_or_skip("promtool (Debian's prometheus package)", check).is_none() {
        return;
    }
    let rules = contrib("prometheus/alerts.yml");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .stdin(Stdio::null())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules {}:\n{}{}",
        rules.display(),
        lossy(&out.stdout),
        lossy(&out.stderr)
    );
}

/// Every `ferrotracker_*` name in the dashboard and the alert rules is a family that a
/// tracker with every optional family enabled (an access list; TLS, rate limit and live sync
/// on, though their families are always there) exposes on `/metrics`; and the dashboard
/// queries every family exposed.
#[test]
fn dashboard_and_alerts_name_only_exposed_metrics() {
    let dashboard_text = read(&contrib("grafana/ferrotracker.json"));
    let dashboard: serde_json::Value =
        serde_json::from_str(&dashboard_text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    let in_dashboard: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let rules = read(&contrib("prometheus/alerts.yml"));
    let in_rules = metric_names(&rules);
    // Not vacuous: the dashboard graphs (nearly) every family, the rules the main ones.
    assert!(in_dashboard.len() >= 20, "{in_dashboard:?}");
    assert!(in_rules.len() >= 6, "{in_rules:?}");
    check_dashboard_variables(&dashboard);

    let t = start_with_every_family();
    let exposed = exposed_families(&t);
    for (file, names) in [
        ("contrib/grafana/ferrotracker.json", &in_dashboard),
        // Descriptions too: a name there is as stale as one in an expression.
        (
            "contrib/grafana/ferrotracker.json",
            &metric_names(&dashboard_text),
        ),
        ("contrib/prometheus/alerts.yml", &in_rules),
    ] {
        let missing: Vec<&String> = names.difference(&exposed).collect();
        assert!(
            missing.is_empty(),
            "{file} names metrics that /metrics does not expose: {missing:?}\nexposed: {exposed:?}"
        );
    }
    // And the other way: a family added to /metrics gets a panel.
    let unseen: Vec<&String> = exposed.difference(&in_dashboard).collect();
    assert!(
        unseen.is_empty(),
        "contrib/grafana/ferrotracker.json graphs no query of {unseen:?}: add a panel"
    );
}

/// A tracker with TCP, UDP and TLS listeners, WebTorrent, the rate limit, an access list and
/// unicast live sync to a loopback port nobody reads, after an announce and a scrape over each protocol.
fn start_with_every_family() -> Tracker {
    let pki = TestPki::new();
    let cert = pki.issue("server", KeyType::EcdsaP256);
    let blacklist = pki.dir().join("blacklist");
    std::fs::write(&blacklist, format!("{}\n", hex(&hash(99)))).expect("write blacklist");
    let sync = free_udp_port(Ipv4Addr::LOCALHOST.into());
    let config = format!(
        "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\nlisten.tls 127.0.0.1:0\n\
         tls.certificate {}\ntls.private_key {}\n\
         ratelimit.requests_per_second 1000\naccess.blacklist {}\n\
         livesync.cluster.listen 127.0.0.1:{sync}\nlivesync.cluster.peer 127.0.0.1:{}\n\
         livesync.cluster.key 00112233445566778899aabbccddeeff\nwebtorrent on\n",
        cert.certificate.display(),
        cert.private_key.display(),
        blacklist.display(),
        free_udp_port(Ipv4Addr::LOCALHOST.into())
    );
    let t = Tracker::start_expecting(&[], Some(&config), 3);
    let h = hash(7);
    http_announce(t.http4(), &h, 7001, 0, "");
    assert_eq!(http_get(t.http4(), &scrape_target(&[h])).scrape().len(), 1);
    let mut udp = Udp::new(t.udp4());
    udp.announce(&h, 7002, 100, Event::Started, 10);
    assert_eq!(udp.scrape(&[h]).len(), 1);
    let (reply, _) = pki
        .client()
        .get(t.https4(), &announce_target(&h, 7003, 100, ""));
    assert_eq!(reply.announce().incomplete, 2, "the TLS announce");
    t
}

/// The family names `/metrics` declares (`# TYPE NAME KIND`), after checking that the traffic
/// was counted.
fn exposed_families(t: &Tracker) -> BTreeSet<String> {
    let body = http_get(t.http4(), "/metrics").body_str();
    for served in [
        r#"ferrotracker_requests_total{proto="udp",kind="announce"} 1"#,
        r#"ferrotracker_requests_total{proto="http",kind="announce"} 2"#,
        r#"ferrotracker_access_list_hashes{source="file"} 1"#,
    ] {
        assert!(body.contains(served), "no `{served}` in /metrics:\n{body}");
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Every `expr` string in the dashboard (panel targets, nested in rows or not).
fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match v {
                    serde_json::Value::String(s) if k == "expr" => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The metric names in PromQL (or any text), read loosely: each identifier
/// `ferrotracker_[a-z0-9_]+`, with a histogram's `_bucket`, `_sum` or `_count` taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    const PREFIX: &str = "ferrotracker_";
    let ident = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices(PREFIX) {
        if text[..at].chars().next_back().is_some_and(ident) {
            continue;
        }
        let rest = &text[at..];
        let name = &rest[..rest.find(|c: char| !ident(c)).unwrap_or(rest.len())];
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(name.to_string());
    }
    names
}

/// The data source is a variable (`DS_PROMETHEUS`) every panel and query uses, and there are
/// `job` and `instance` variables.
fn check_dashboard_variables(d: &serde_json::Value) {
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` variable"))
    };
    assert_eq!(var("DS_PROMETHEUS")["type"], "datasource");
    assert_eq!(var("DS_PROMETHEUS")["query"], "prometheus");
    assert_eq!(var("instance")["type"], "query");
    assert_eq!(var("job")["type"], "query");
    let mut sources = Vec::new();
    collect_key(d, "datasource", &mut sources);
    for s in sources.iter().filter(|s| s["type"] == "prometheus") {
        assert_eq!(s["uid"], "${DS_PROMETHEUS}", "{s}");
    }
    let panels = d["panels"].as_array().expect("panels");
    for p in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            let e = t["expr"].as_str().expect("expr");
            assert!(e.contains(r#"instance=~"$instance""#), "{e}");
        }
    }
}

fn collect_key<'a>(v: &'a serde_json::Value, key: &str, out: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == key {
                    out.push(v);
                }
                collect_key(v, key, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_key(v, key, out)),
        _ => {}
    }
}

#[test]
fn metric_names_are_read_loosely() {
    let names = metric_names(
        r#"sum(rate(ferrotracker_errors_total{code!="302"}[5m])) / x_ferrotracker_no
        + histogram_quantile(0.9, ferrotracker_latency_seconds_bucket) ferrotracker_up"#,
    );
    let want = [
        "ferrotracker_errors_total",
        "ferrotracker_latency_seconds",
        "ferrotracker_up",
    ];
    assert_eq!(names, want.iter().map(|s| s.to_string()).collect());
}

// ---------------------------------------------------------------------------------- logging

/// `log.format json`: every line of a start and a stop is a JSON object with a timestamp, a
/// level, a target and a message.
#[test]
fn json_log_lines_from_start_to_stop() {
    let mut t = Tracker::start_with_env(V4, Some("log.format json\n"), 2, &[("RUST_LOG", None)]);
    let st = t.stop_with(libc::SIGTERM, Duration::from_secs(10));
    assert!(st.success(), "{st:?}");
    let log = t.stderr();
    let mut messages = Vec::new();
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{log}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(v[key].is_string(), "no {key} in {line}");
        }
        messages.push(v["message"].as_str().unwrap_or_default().to_string());
    }
    assert!(
        messages.iter().any(|m| m.starts_with("listening on udp ")),
        "{log}"
    );
    assert!(
        messages.iter().any(|m| m.contains("shutting down")),
        "{log}"
    );
}

/// `log.level warn` hides the info lines; `RUST_LOG`, when set, overrides it. A start that
/// fails to bind logs an info line (the memory ceiling) and then the error.
#[test]
fn log_level_and_rust_log_precedence() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = taken.local_addr().expect("local_addr").port().to_string();
    let dir = TempDir::new("log");
    let warn = dir.write("warn.conf", "log.level warn\n");
    let warn = warn.to_str().expect("utf-8 path");
    let args = |conf: Option<&str>| {
        let mut a = vec!["-i", "127.0.0.1", "-p", &port];
        a.extend(conf.map(|c| ["-f", c]).into_iter().flatten());
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    for (conf, rust_log, info_shown) in [
        (None, None, true),
        (Some(warn), None, false),
        (Some(warn), Some("info"), true),
        (None, Some("error"), false),
    ] {
        let out = run_with_env(&args(conf), rust_log, None);
        let what = format!("config {conf:?}, RUST_LOG {rust_log:?}:\n{}", out.stderr);
        assert_eq!(out.status.code(), Some(111), "{what}");
        assert!(out.stderr.contains("ERROR"), "{what}");
        assert_eq!(
            out.stderr.contains("swarm memory ceiling"),
            info_shown,
            "{what}"
        );
        assert!(!out.stderr.contains('\u{1b}'), "colours on a pipe: {what}");
    }
}

/// Under systemd (`JOURNAL_STREAM` naming stderr's device and inode), text lines carry no
/// timestamp; with `JOURNAL_STREAM` naming another file (stderr redirected by a child of a
/// service), they do.
#[test]
fn no_timestamp_when_stderr_is_the_journal() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = taken.local_addr().expect("local_addr").port().to_string();
    let args: Vec<String> = ["-i", "127.0.0.1", "-p", &port]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for journal in [true, false] {
        let out = run_with_env(&args, Some("info"), Some(journal));
        assert_eq!(out.status.code(), Some(111), "{}", out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert!(lines.len() >= 2, "{}", out.stderr);
        for line in lines {
            // `2026-01-02T03:04:05.678901Z  INFO ...` or, for the journal, `  INFO ...`.
            let stamped = line.as_bytes().first().is_some_and(u8::is_ascii_digit);
            assert_eq!(
                stamped, !journal,
                "JOURNAL_STREAM matching: {journal}: {line}"
            );
        }
    }
}

/// Runs the binary to its exit with stderr to a file and `RUST_LOG` as given (`None`: unset);
/// `journal`: `JOURNAL_STREAM` set to that file's device and inode (`Some(true)`), to another
/// inode (`Some(false)`), or unset.
fn run_with_env(args: &[String], rust_log: Option<&str>, journal: Option<bool>) -> Finished {
    let dir = TempDir::new("stderr");
    let path = dir.path().join("stderr");
    let file = File::create(&path).expect("create stderr file");
    let meta = file.metadata().expect("stat stderr file");
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM");
    if let Some(v) = rust_log {
        cmd.env("RUST_LOG", v);
    }
    if let Some(matching) = journal {
        let ino = if matching { meta.ino() } else { meta.ino() + 1 };
        cmd.env("JOURNAL_STREAM", format!("{}:{ino}", meta.dev()));
    }
    let mut child = cmd.spawn().expect("spawn ferrotracker");
    let status = wait_deadline(&mut child, START_DEADLINE).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("ferrotracker {args:?} did not exit: {}", read(&path))
    });
    Finished {
        status,
        stdout: String::new(),
        stderr: read(&path),
    }
}
