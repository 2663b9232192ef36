//! `--check-config`, as `nginx -t`: the configuration has parsed and validated by the time this
//! runs; here every file it names is looked at as the start would (inside `tracker.rootdir`,
//! as the user the tracker would become), and nothing is bound or changed. Exit 0 if the
//! tracker would start as configured, 1 with every problem found otherwise.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use ferrotracker_core::config::Config;
use nix::unistd::{Uid, User};

use crate::{accessfifo, accessfile, privs};
use ferrotracker::tls::{self, CertFiles};

/// Checks `cfg`, prints the verdict, and gives the exit code.
pub fn run(cfg: &Config) -> ExitCode {
    let (problems, notes) = check(cfg);
    for n in &notes {
        println!("ferrotracker: {n}");
    }
    for p in &problems {
        eprintln!("ferrotracker: {p}");
    }
    if problems.is_empty() {
        println!(
            "ferrotracker: configuration OK: {} sockets, {} access list{}",
            cfg.listen.len(),
            if cfg.access.list.is_some() {
                "an"
            } else {
                "no"
            },
            if cfg.livesync.listen.is_some() {
                ", live sync"
            } else {
                ""
            },
        );
        ExitCode::SUCCESS
    } else {
        eprintln!("ferrotracker: configuration check failed");
        ExitCode::from(1)
    }
}

/// Problems that would stop the start or leave the tracker not doing what the configuration
/// says, and notes worth knowing.
fn check(cfg: &Config) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let root = Uid::effective().is_root();
    let rootdir = cfg.process.rootdir.as_deref();
    if let Some(dir) = rootdir {
        if !dir.is_dir() {
            problems.push(format!(
                "tracker.rootdir {}: not a directory",
                dir.display()
            ));
        }
    }
    // The user files are opened as: the configured one (default nobody) when started as root.
    let uid = if root {
        let name = cfg.process.user.as_deref().unwrap_or("nobody");
        match User::from_name(name) {
            Ok(Some(u)) => u.uid.as_raw(),
            Ok(None) => {
                problems.push(format!("tracker.user {name}: no such user"));
                return (problems, notes);
            }
            Err(e) => {
                problems.push(format!("tracker.user {name}: can't look it up ({e})"));
                return (problems, notes);
            }
        }
    } else {
        Uid::effective().as_raw()
    };
    let at = |p: &Path| privs::after_drop(p, rootdir, root);
    if let Some(list) = &cfg.access.list {
        let path = at(&list.path);
        match accessfile::read(&path) {
            Ok(parsed) => {
                notes.push(format!(
                    "{} {}: {} info_hashes",
                    list.mode,
                    path.display(),
                    parsed.list.len()
                ));
                if let Some(skipped) = parsed.skipped() {
                    notes.push(format!("{} {}: {skipped}", list.mode, path.display()));
                }
            }
            Err(e) => problems.push(format!(
                "{} {}: can't read it ({e})",
                list.mode,
                path.display()
            )),
        }
    }
    for (key, fifo) in [
        ("access.fifo_add", &cfg.access.fifo_add),
        ("access.fifo_delete", &cfg.access.fifo_delete),
    ] {
        let Some(fifo) = fifo else { continue };
        let path = at(fifo);
        match accessfifo::check_path(&path, uid) {
            Ok(true) => {}
            Ok(false) if parent_is_dir(&path) => {
                notes.push(format!("{key} {}: will be created", path.display()))
            }
            Ok(false) => problems.push(format!(
                "{key} {}: its directory does not exist",
                path.display()
            )),
            Err(e) => problems.push(format!("{key} {}: {e}", path.display())),
        }
    }
    if let Some(load) = &cfg.statedump.load {
        let path = at(load);
        if let Err(e) = fs::File::open(&path) {
            problems.push(format!("tracker.statedump_load {}: {e}", path.display()));
        }
    }
    if let Some(file) = &cfg.statedump.file {
        let path = at(file);
        if !parent_is_dir(&path) {
            problems.push(format!(
                "tracker.statedump {}: its directory does not exist",
                path.display()
            ));
        }
    }
    if let (Some(certificate), Some(private_key)) = (&cfg.tls.certificate, &cfg.tls.private_key) {
        let files = CertFiles {
            certificate: at(certificate),
            private_key: at(private_key),
        };
        match tls::load(&files) {
            Ok(key) => notes.push(format!(
                "tls.certificate {}: SHA-256 {}",
                files.certificate.display(),
                key.end_entity_cert()
                    .map(tls::fingerprint)
                    .unwrap_or_default()
            )),
            Err(e) => problems.push(format!("tls: {e}")),
        }
    }
    (problems, notes)
}

fn parent_is_dir(p: &Path) -> bool {
    match p.parent() {
        Some(d) if d.as_os_str().is_empty() => true,
        Some(d) => d.is_dir(),
        None => false,
    }
}
