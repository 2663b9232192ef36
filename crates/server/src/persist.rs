//! Statedump files: loaded once at start (`-l`), written periodically and at shutdown.
//!
//! A dump is written to `FILE.tmp`, synced, and renamed over `FILE`, and then the directory is
//! synced, so a crash in the middle of writing leaves the previous dump intact and a finished
//! dump survives a power loss. With peers enabled, `FILE.peers` is written the same way (see
//! `ferrotracker_core::statedump`).
//!
//! `FILE.tmp` is made anew each time, mode 0600 (the peer file holds client addresses), with
//! `O_EXCL`, which never follows a symbolic link: whatever is left at that path is unlinked
//! first (unlink removes a link, not its target), and if something appears there again before
//! the create, that dump fails and the previous one is kept.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ferrotracker_core::statedump;
use ferrotracker_core::Tracker;

/// The peer file that goes with a statedump file.
pub fn peers_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".peers");
    PathBuf::from(p)
}

/// Writes the statedump (and, if asked, the peer file) atomically. Returns (torrents, peers).
pub fn write(tracker: &Tracker, path: &Path, with_peers: bool) -> anyhow::Result<(u64, u64)> {
    let torrents = write_atomically(path, |w| statedump::write_torrents(&tracker.store, w))?;
    let peers = if with_peers {
        write_atomically(&peers_path(path), |w| {
            statedump::write_peers(&tracker.store, w)
        })?
    } else {
        0
    };
    Ok((torrents, peers))
}

/// Loads a statedump (and its peer file, if there is one and `with_peers`), keeping only
/// torrents that `allowed` accepts.
pub fn load(
    tracker: &Tracker,
    path: &Path,
    with_peers: bool,
    now: u32,
    allowed: impl Fn(&ferrotracker_proto::InfoHash) -> bool,
) -> anyhow::Result<()> {
    let f = File::open(path).with_context(|| format!("opening statedump {}", path.display()))?;
    let report = statedump::load_torrents(BufReader::new(f), &tracker.store, allowed)
        .with_context(|| format!("reading statedump {}", path.display()))?;
    tracing::info!(
        "statedump {}: {} torrents loaded, {} refused by the access list, {} already known, {} bad lines",
        path.display(),
        report.loaded,
        report.refused_by_access_list,
        report.already_known,
        report.bad_line_count
    );
    for (line, why) in &report.bad_lines {
        tracing::warn!("statedump {}:{line}: {}", path.display(), why.reason());
    }
    if with_peers {
        let pp = peers_path(path);
        match File::open(&pp) {
            Ok(f) => match statedump::load_peers(f, &tracker.store, now) {
                Ok(n) => tracing::info!("peer file {}: {n} peers restored", pp.display()),
                Err(e) => tracing::warn!(
                    "peer file {}: {e} (what was read before is kept)",
                    pp.display()
                ),
            },
            Err(e) => tracing::info!("no peer file {}: {e}", pp.display()),
        }
    }
    Ok(())
}

fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&File>) -> std::io::Result<u64>,
) -> anyhow::Result<u64> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing the stale {}", tmp.display()))
        }
        _ => {}
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let n = {
        let mut w = BufWriter::with_capacity(256 * 1024, &file);
        let n = fill(&mut w).with_context(|| format!("writing {}", tmp.display()))?;
        w.flush()
            .with_context(|| format!("writing {}", tmp.display()))?;
        n
    };
    file.sync_all()
        .with_context(|| format!("syncing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    // The rename is durable once the directory is.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(
            "{} written, but syncing its directory {} failed ({e}): a power loss may still \
             bring back the previous one",
            path.display(),
            dir.display()
        );
    }
    Ok(n)
}
