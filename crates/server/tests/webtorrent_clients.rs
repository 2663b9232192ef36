//! Real WebTorrent clients against the tracker: the Node scripts in `tests/webtorrent/`
//! (webtorrent@1 over WebRTC from @roamhq/wrtc, bittorrent-tracker's client, and two tabs of
//! headless chromium) move a file through it over ws:// and wss://, see it stopped, and scrape
//! the peers they announced. They need node with the scripts' packages
//! (`bash tests/webtorrent/install.sh`; `scripts/setup.sh` runs it) and chromium for the
//! browser test. Without them these tests say so and skip, unless `CI` is set: then they fail
//! (see `require_or_skip`).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tls::{KeyType, TestPki};
use common::*;

/// The scripts' own deadline for a transfer, and ours for a whole script.
const TRANSFER_SECS: u64 = 60;
const SCRIPT_DEADLINE: Duration = Duration::from_secs(TRANSFER_SECS + 40);

fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/webtorrent")
}

/// node, with the scripts' packages installed.
fn node() -> Result<(), String> {
    let out = Command::new("node")
        .current_dir(scripts())
        .args([
            "-e",
            "require('webtorrent'); require('bittorrent-tracker'); require('@roamhq/wrtc')",
        ])
        .output()
        .map_err(|e| format!("node: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "the test clients' packages (bash tests/webtorrent/install.sh): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
        ))
    }
}

fn have_node() -> bool {
    require_or_skip("node with tests/webtorrent's packages", node()).is_some()
}

fn have_chromium() -> bool {
    let found = std::env::var_os("CHROMIUM").is_some()
        || Command::new("chromium")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    require_or_skip(
        "chromium (or CHROMIUM=path) and puppeteer-core",
        if found {
            Ok(())
        } else {
            Err("chromium not found".into())
        },
    )
    .is_some()
}

struct Outcome {
    code: Option<i32>,
    output: String,
}

/// Runs `node SCRIPT ARGS...` in the scripts' folder, killing it (by its PID) past the deadline.
fn run(script: &str, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Outcome {
    let ran = run_command(
        Command::new("node")
            .current_dir(scripts())
            .arg(script)
            .args(args)
            .envs(env.iter().copied()),
        SCRIPT_DEADLINE,
    );
    Outcome {
        code: ran.status.and_then(|s| s.code()),
        output: format!("{}{}", ran.stdout, ran.stderr),
    }
}

fn assert_ok(what: &str, o: &Outcome, t: &Tracker) {
    assert_eq!(
        o.code,
        Some(0),
        "{what}: {}\ntracker:\n{}",
        o.output,
        t.stderr()
    );
}

fn transfer_args(url: &str) -> Vec<String> {
    vec!["--timeout".into(), TRANSFER_SECS.to_string(), url.into()]
}

#[test]
fn webtorrent_clients_transfer_over_ws() {
    if !have_node() {
        return;
    }
    let t = Tracker::v4_with_config("listen.tcp 127.0.0.1:0\n");
    let url = format!("ws://{}/announce", t.http4());
    let args = transfer_args(&url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run("transfer.js", &args, &[]);
    assert_ok("transfer.js over ws://", &o, &t);
}

#[test]
fn webtorrent_clients_transfer_over_wss_trusting_the_test_ca() {
    if !have_node() {
        return;
    }
    let pki = TestPki::new();
    let cert = pki.issue("server", KeyType::EcdsaP256);
    let t = Tracker::start_expecting(
        &[],
        Some(&format!(
            "listen.tcp 127.0.0.1:0\nlisten.tls 127.0.0.1:0\ntls.certificate {}\n\
             tls.private_key {}\n",
            cert.certificate.display(),
            cert.private_key.display()
        )),
        2,
    );
    let url = format!("wss://{}/announce", t.https4());
    let args = transfer_args(&url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ca = pki.dir().join("ca.pem");
    assert!(ca.exists(), "no {}", ca.display());
    let o = run(
        "transfer.js",
        &args,
        &[("NODE_EXTRA_CA_CERTS", ca.as_os_str())],
    );
    assert_ok("transfer.js over wss://", &o, &t);
}

#[test]
fn webtorrent_clients_find_no_peer_when_the_tracker_is_stopped() {
    if !have_node() {
        return;
    }
    let mut t = Tracker::v4_with_config("listen.tcp 127.0.0.1:0\n");
    let url = format!("ws://{}/announce", t.http4());
    t.stop_with(libc::SIGTERM, IO_TIMEOUT);
    let o = run("transfer.js", &["--expect-fail", "5", &url], &[]);
    assert_eq!(o.code, Some(0), "{}", o.output);
}

#[test]
fn bittorrent_tracker_client_scrapes_what_it_announced() {
    if !have_node() {
        return;
    }
    let t = Tracker::v4_with_config("listen.tcp 127.0.0.1:0\n");
    let url = format!("ws://{}/announce", t.http4());
    let hash = "0123456789abcdef0123456789abcdef01234567";
    let mut held = Vec::new();
    for left in ["0", "1000"] {
        let mut child = Command::new("node")
            .current_dir(scripts())
            .args(["announce.js", "--left", left, "--hold", "60", &url, hash])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn node");
        let out = drain(child.stdout.take().expect("stdout"));
        held.push((child, out));
    }
    let seen = poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let o = run("scrape.js", &[&url, hash], &[]);
        (o.code == Some(0)
            && o.output.contains("\"complete\":1")
            && o.output.contains("\"incomplete\":1"))
        .then_some(o.output)
    });
    for (child, _) in &held {
        signal(child, libc::SIGTERM);
    }
    for (mut child, out) in held {
        let _ = wait_deadline(&mut child, IO_TIMEOUT);
        let _ = child.kill();
        let _ = out.join();
    }
    assert!(seen.is_some(), "scrape never showed 1 seeder and 1 leecher");
    // Stopped: both gone.
    let gone = poll_until(IO_TIMEOUT, Duration::from_millis(200), || {
        let o = run("scrape.js", &[&url, hash], &[]);
        (o.code == Some(0)
            && o.output.contains("\"incomplete\":0")
            && o.output.contains("\"complete\":0"))
        .then_some(())
    });
    assert!(gone.is_some());
}

#[test]
fn two_browser_tabs_transfer_over_ws() {
    if !have_node() || !have_chromium() {
        return;
    }
    let t = Tracker::v4_with_config("listen.tcp 127.0.0.1:0\n");
    let url = format!("ws://{}/announce", t.http4());
    let args = transfer_args(&url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run("browser.js", &args, &[]);
    assert_ok("browser.js over ws://", &o, &t);
}
