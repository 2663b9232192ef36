//! A real BitTorrent client end to end: two libtorrent sessions (Debian's python3-libtorrent)
//! find each other only through ferrotracker and move a random file between them: over HTTP
//! announces, over UDP, and over HTTPS on 127.0.0.1 and on [::1], the HTTPS runs then scraping
//! the tracker through libtorrent. A negative control shows that with a tracker that never
//! answers, the same two sessions do not find each other.
//!
//! The script is `tests/e2e/libtorrent_transfer.py`; it needs `/usr/bin/python3` with
//! `libtorrent`. `scripts/test.sh` installs it. Without it these tests say so and skip, unless
//! `CI` is set: then they fail (see `require_or_skip`).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const PYTHON: &str = "/usr/bin/python3";
/// The script's own deadline for the transfer, and ours for the whole script.
const TRANSFER_SECS: u64 = 60;
const SCRIPT_DEADLINE: Duration = Duration::from_secs(TRANSFER_SECS + 40);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/libtorrent_transfer.py")
}

/// `Ok` when `/usr/bin/python3` can import libtorrent.
fn libtorrent() -> Result<(), String> {
    let out = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            // The traceback's last line says it (`ModuleNotFoundError: ...`).
            let why = err.trim().lines().last().unwrap_or("").to_string();
            Err(format!("{PYTHON} cannot import libtorrent ({why})"))
        }
        Err(e) => Err(format!("cannot run {PYTHON} ({e})")),
    }
}

/// Whether the test can run: see [`require_or_skip`] (it fails when `CI` is set).
fn have_libtorrent() -> bool {
    require_or_skip("python3-libtorrent for /usr/bin/python3", libtorrent()).is_some()
}

struct Outcome {
    code: Option<i32>,
    output: String,
}

/// Runs the script, killing it if it outlives the deadline.
fn run_script(args: &[&str]) -> Outcome {
    run_script_with(args, &[])
}

/// As [`run_script`], with `env` added to the script's environment.
fn run_script_with(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Outcome {
    let ran = run_command(
        Command::new(PYTHON)
            .arg(script())
            .args(args)
            .envs(env.iter().copied())
            .env("PYTHONUNBUFFERED", "1"),
        SCRIPT_DEADLINE,
    );
    let output = format!("{}{}", ran.stdout, ran.stderr);
    match ran.status {
        Some(st) => Outcome {
            code: st.code(),
            output,
        },
        None => panic!("e2e script ran past {SCRIPT_DEADLINE:?}; output:\n{output}"),
    }
}

fn info_hash_of(output: &str) -> [u8; 20] {
    let hex = output
        .lines()
        .find_map(|l| l.strip_prefix("info_hash="))
        .unwrap_or_else(|| panic!("script printed no info_hash; output:\n{output}"))
        .trim();
    assert_eq!(hex.len(), 40, "bad info_hash {hex:?}");
    let mut h = [0u8; 20];
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex info_hash");
    }
    h
}

fn transfer(url_of: impl Fn(&Tracker) -> String) {
    if !have_libtorrent() {
        return;
    }
    let t = Tracker::v4();
    check_transfer(&t, &url_of(&t), &[]);
}

/// Runs the transfer through `url` on `t` and checks both sides' story; returns the script's
/// output.
fn check_transfer(t: &Tracker, url: &str, env: &[(&str, &std::ffi::OsStr)]) -> String {
    check_transfer_with(t, url, &[], env)
}

/// As [`check_transfer`], with `extra` arguments to the script.
fn check_transfer_with(
    t: &Tracker,
    url: &str,
    extra: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> String {
    let url = url.to_string();
    let secs = TRANSFER_SECS.to_string();
    let mut args = vec![url.as_str(), "--timeout", &secs];
    args.extend_from_slice(extra);
    let o = run_script_with(&args, env);
    assert_eq!(
        o.code,
        Some(0),
        "libtorrent transfer through {url} failed; script output:\n{}\ntracker stderr:\n{}",
        o.output,
        t.stderr()
    );
    assert!(o.output.contains("OK: "), "{}", o.output);
    // The tracker's side of the story: the leecher's `completed` reached it (the torrent
    // records a download), whichever protocol announced it.
    let h = info_hash_of(&o.output);
    let s = http_get(t.http4(), &scrape_target(&[h])).scrape();
    assert_eq!(
        s.len(),
        1,
        "tracker does not know the torrent; output:\n{}",
        o.output
    );
    assert!(
        s[0].1.downloaded >= 1,
        "tracker counted no completed download: {:?}; output:\n{}",
        s[0].1,
        o.output
    );
    eprintln!("{}", o.output);
    o.output
}

/// What libtorrent's scrape said (`scrape complete=C incomplete=I`), from the script's output.
fn scraped(output: &str) -> (i64, i64) {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("scrape "))
        .unwrap_or_else(|| panic!("script printed no scrape; output:\n{output}"));
    let field = |k: &str| -> i64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line:?}"))
    };
    (field("complete"), field("incomplete"))
}

/// A tracker with plain HTTP on 127.0.0.1 (for checking) and TLS on `tls` (`127.0.0.1:0` or
/// `[::1]:0`) presenting a certificate of a fresh test CA.
fn https_tracker(tls: &str) -> (common::tls::TestPki, Tracker) {
    let pki = common::tls::TestPki::new();
    let cert = pki.issue("server", common::tls::KeyType::EcdsaP256);
    let conf = format!(
        "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\nlisten.tls {tls}\n\
         tls.certificate {}\ntls.private_key {}\n",
        cert.certificate.display(),
        cert.private_key.display()
    );
    let t = Tracker::start_expecting(&[], Some(&conf), 3);
    (pki, t)
}

/// Two libtorrent sessions move a file between them through an https:// announce URL, then
/// libtorrent scrapes the tracker over the same HTTPS (the /scrape URL it derives): both
/// sessions are seeding by then (the leecher's `completed` announce was answered), so the
/// scrape must say 2 complete, 0 incomplete.
fn transfer_and_scrape_over_https(t: &Tracker, pki: &common::tls::TestPki, url: &str) {
    let out = check_transfer_with(
        t,
        url,
        &["--scrape"],
        &[("SSL_CERT_FILE", pki.ca_certificate.as_os_str())],
    );
    assert_eq!(
        scraped(&out),
        (2, 0),
        "libtorrent's scrape through {url}; output:\n{out}"
    );
}

#[test]
fn libtorrent_transfer_over_http_announces() {
    transfer(|t| format!("http://{}/announce", t.http4()));
}

/// Through the tracker's own TLS listener on 127.0.0.1: libtorrent checks the certificate
/// against OpenSSL's default trust store, which `SSL_CERT_FILE` points at the test CA; then it
/// scrapes over HTTPS.
#[test]
fn libtorrent_transfer_and_scrape_over_https_announces() {
    if !have_libtorrent() {
        return;
    }
    let (pki, t) = https_tracker("127.0.0.1:0");
    transfer_and_scrape_over_https(&t, &pki, &format!("https://{}/announce", t.https4()));
}

/// The same over https://[::1]: both sessions listen on [::1], so the only peer address the
/// tracker can hand out is an IPv6 one (`peers6`).
#[test]
fn libtorrent_transfer_and_scrape_over_https_on_ipv6() {
    if !have_libtorrent() {
        return;
    }
    let (pki, t) = https_tracker("[::1]:0");
    transfer_and_scrape_over_https(&t, &pki, &format!("https://{}/announce", t.https6()));
}

#[test]
fn libtorrent_transfer_over_udp_announces() {
    transfer(|t| format!("udp://{}/announce", t.udp4()));
}

/// Negative control: a UDP "tracker" that never answers. Without tracker replies the leecher
/// must not find the seeder (no DHT, LSD, PEX or other discovery leaks into the test).
#[test]
fn libtorrent_peers_do_not_meet_without_a_tracker() {
    if !have_libtorrent() {
        return;
    }
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr: SocketAddr = silent.local_addr().expect("addr");
    let url = format!("udp://{addr}/announce");
    let o = run_script(&[&url, "--timeout", "6", "--no-tracker-wait"]);
    assert_eq!(
        o.code,
        Some(1),
        "expected the transfer to fail without a tracker; output:\n{}",
        o.output
    );
    assert!(o.output.contains("leecher did not finish"), "{}", o.output);
    drop(silent);
}
