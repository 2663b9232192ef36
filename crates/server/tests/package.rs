//! The Debian package and its systemd unit: what `scripts/package.sh` puts in the .deb, that
//! dpkg installs, upgrades, removes and purges it keeping an operator's edited conffile, that
//! `systemd-analyze` accepts the unit and rates its sandbox 2.0 or lower, and that the generated
//! conffile and ferrotracker.conf(5) list every key the binary knows.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

const CONF: &str = "/etc/ferrotracker/ferrotracker.conf";
const UNIT: &str = "/usr/lib/systemd/system/ferrotracker.service";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    out
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(program: &str, arg: &str) -> Result<(), String> {
    match Command::new(program).arg(arg).output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(format!("`{program} {arg}` does not run")),
    }
}

/// The keys `--print-config` documents: each `# key ARG: help` line.
fn keys() -> Vec<String> {
    let out = ok(Command::new(bin()).arg("--print-config"));
    let keys: Vec<String> = out
        .lines()
        .skip(3)
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.split(' ').nth(1).is_some_and(|arg| arg.ends_with(':')))
        .filter_map(|l| l.split(' ').next())
        .filter(|k| k.contains('.'))
        .map(str::to_string)
        .collect();
    assert!(keys.len() > 40, "too few keys found: {keys:?}");
    keys
}

fn assets() -> TempDir {
    let dir = TempDir::new("package-assets");
    ok(Command::new("bash")
        .arg(repo().join("scripts/package-assets.sh"))
        .arg(bin())
        .arg(dir.path()));
    dir
}

#[test]
fn man_page_and_conffile_list_every_key() {
    let dir = assets();
    let man = std::fs::read_to_string(dir.path().join("ferrotracker.conf.5")).unwrap();
    let conf = std::fs::read_to_string(dir.path().join("ferrotracker.conf")).unwrap();
    for key in keys() {
        let roff = key.replace('-', "\\-");
        assert!(
            man.contains(&format!(".BI \"{roff} \"")),
            "ferrotracker.conf(5) lacks {key}"
        );
        assert!(
            conf.contains(&format!("# {key} ")),
            "the conffile lacks {key}'s help"
        );
    }
    // Every line of the conffile is a comment or blank: it changes nothing until edited.
    assert!(
        conf.lines().all(|l| l.is_empty() || l.starts_with('#')),
        "{conf}"
    );
    let man8 = std::fs::read_to_string(dir.path().join("ferrotracker.8")).unwrap();
    assert!(!man8.contains("@VERSION@"));
    for section in [".SH OPTIONS", ".SH SIGNALS", ".SH EXIT STATUS", ".SH FILES"] {
        assert!(man8.contains(section), "ferrotracker(8) lacks {section}");
    }
}

#[test]
fn conffile_uncommented_reads_back_as_the_defaults() {
    let dir = assets();
    let defaults = ok(Command::new(bin()).arg("--print-config"));
    // Commented, the file is the defaults.
    let conf = dir.path().join("ferrotracker.conf");
    let read = ok(Command::new(bin())
        .arg("-f")
        .arg(&conf)
        .arg("--print-config"));
    assert_eq!(read, defaults);
    // Each `#key value` line that shows a default, uncommented, parses and is that default.
    let text = std::fs::read_to_string(&conf).unwrap();
    let set: String = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| l.split(' ').next().is_some_and(|k| k.contains('.')))
        .filter(|l| {
            !l.split(' ')
                .nth(1)
                .unwrap_or("")
                .chars()
                .all(|c| c.is_ascii_uppercase())
        })
        .filter(|l| !l.contains("ip[/bits]") && !l.contains("IP[:PORT]"))
        .map(|l| format!("{l}\n"))
        .collect();
    let uncommented = dir.write("uncommented.conf", &set);
    let read = ok(Command::new(bin())
        .arg("-f")
        .arg(&uncommented)
        .arg("--print-config"));
    assert_eq!(read, defaults);
}

#[test]
fn unit_is_sandboxed_to_2_or_lower() {
    let Some(()) = require_or_skip("systemd-analyze", have("systemd-analyze", "--version")) else {
        return;
    };
    let unit = repo().join("packaging/ferrotracker.service");
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit));
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for ferrotracker.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=30s",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=ferrotracker",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    ] {
        assert!(unit_text.lines().any(|l| l == line), "unit lacks {line}");
    }
}

/// Purges the package however the test ends, so nothing is left installed.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = run(Command::new("dpkg").args(["--purge", "ferrotracker"]));
    }
}

fn installed_version() -> Option<String> {
    let out = run(Command::new("dpkg-query").args([
        "-W",
        "-f",
        "${Version} ${db:Status-Abbrev}",
        "ferrotracker",
    ]));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn needs() -> Result<(), String> {
    root()?;
    have("dpkg", "--version")?;
    have("cargo-deb", "--version")
        .map_err(|_| "cargo-deb is not installed (cargo install cargo-deb)".to_string())?;
    // The package is built from the binary under test, as scripts/package.sh --no-build does.
    if !bin().contains("/release/") {
        return Err("a release build (cargo test --release)".into());
    }
    if let Some(v) = installed_version() {
        return Err(format!(
            "ferrotracker {v} is installed already; purge it first"
        ));
    }
    Ok(())
}

fn build_deb(revision: &str, out: &Path) -> PathBuf {
    ok(Command::new("bash")
        .arg(repo().join("scripts/package.sh"))
        .args(["--no-build", "--deb-revision", revision, "--output"])
        .arg(out));
    std::fs::read_dir(out)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(&format!("-{revision}_")) && n.ends_with(".deb"))
        })
        .unwrap_or_else(|| panic!("no revision {revision} .deb in {}", out.display()))
}

fn dpkg(args: &[&str]) -> String {
    ok(Command::new("dpkg")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(args))
}

#[test]
fn deb_installs_upgrades_removes_and_purges_keeping_an_edited_conffile() {
    let Some(()) = require_or_skip("root, dpkg, cargo-deb and a release build", needs()) else {
        return;
    };
    let dir = TempDir::new("deb");
    let v1 = build_deb("1", &dir.path().join("1"));
    let v2 = build_deb("2", &dir.path().join("2"));

    let contents = ok(Command::new("dpkg-deb").arg("-c").arg(&v1));
    for path in [
        "./usr/bin/ferrotracker",
        "./etc/ferrotracker/ferrotracker.conf",
        "./usr/lib/systemd/system/ferrotracker.service",
        "./usr/share/man/man8/ferrotracker.8.gz",
        "./usr/share/man/man5/ferrotracker.conf.5.gz",
        "./usr/share/doc/ferrotracker/copyright",
        "./usr/share/doc/ferrotracker/changelog.Debian.gz",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} not in the package:\n{contents}"
        );
    }
    let package = ok(Command::new("dpkg-deb").arg("-f").arg(&v1).arg("Package"));
    assert_eq!(package.trim(), "ferrotracker");
    let control = dir.path().join("control");
    ok(Command::new("dpkg-deb").arg("-e").arg(&v1).arg(&control));
    assert_eq!(
        std::fs::read_to_string(control.join("conffiles"))
            .unwrap()
            .trim(),
        CONF
    );

    let _purge = Purge;
    dpkg(&["-i", v1.to_str().unwrap()]);
    assert_eq!(installed_version().as_deref(), Some("0.1.0-1 ii"));
    let passwd = ok(Command::new("getent").args(["passwd", "ferrotracker"]));
    assert!(
        passwd
            .trim_end()
            .ends_with(":/var/lib/ferrotracker:/usr/sbin/nologin"),
        "{passwd}"
    );
    let owner = ok(Command::new("stat").args(["-c", "%U %a", "/var/lib/ferrotracker"]));
    assert_eq!(owner.trim(), "ferrotracker 750");
    let version = ok(Command::new("/usr/bin/ferrotracker").arg("-v"));
    assert!(version.starts_with("ferrotracker "), "{version}");
    // The installed conffile is one the installed binary accepts.
    ok(Command::new("/usr/bin/ferrotracker").args(["--check-config", "-f", CONF]));
    if have("systemd-analyze", "--version").is_ok() {
        ok(Command::new("systemd-analyze").args(["verify", UNIT]));
    }

    // An operator edits the conffile and leaves state behind.
    let edited = format!(
        "{}tracker.interval 900\n",
        std::fs::read_to_string(CONF).unwrap()
    );
    std::fs::write(CONF, &edited).unwrap();
    std::fs::write("/var/lib/ferrotracker/statedump", "state").unwrap();

    // Upgrade: the edit stays (no prompt: stdin is /dev/null, so a prompt would fail).
    dpkg(&["-i", v2.to_str().unwrap()]);
    assert_eq!(installed_version().as_deref(), Some("0.1.0-2 ii"));
    assert_eq!(std::fs::read_to_string(CONF).unwrap(), edited);

    // Remove: the program goes, configuration and data stay.
    dpkg(&["--remove", "ferrotracker"]);
    assert_eq!(installed_version().as_deref(), Some("0.1.0-2 rc"));
    assert!(!Path::new("/usr/bin/ferrotracker").exists());
    assert!(!Path::new(UNIT).exists());
    assert_eq!(std::fs::read_to_string(CONF).unwrap(), edited);
    assert!(Path::new("/var/lib/ferrotracker/statedump").exists());

    // Purge: the conffile and the state go too.
    dpkg(&["--purge", "ferrotracker"]);
    assert_eq!(installed_version(), None);
    assert!(!Path::new(CONF).exists());
    assert!(!Path::new("/var/lib/ferrotracker").exists());
}
