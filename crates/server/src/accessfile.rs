//! The access-list file (`access.whitelist` / `access.blacklist`, `-w` / `-b`): read at start,
//! then reloaded by a thread on SIGHUP and whenever the file changes on disk.
//!
//! The reload thread polls the file's identity (device, inode, size, mtime, ctime) once a second
//! and reloads once a change has held for a whole poll, so a list still being written is not
//! loaded half-way (and an editor's write-to-temp-and-rename is seen as a change). A file that
//! can't be read keeps the list in force and says why in the log; a file that disappears and
//! comes back is loaded when it is back. The parsed list is swapped into [`Access`] in one
//! pointer store: announces never wait for a reload.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ferrotracker_core::access::{Access, HashList, Mode, Parsed};
use ferrotracker_core::config::AccessFile;

/// Reads the list at start. A file that can't be read is only a warning, as in opentracker: a
/// whitelist then refuses everything and a blacklist nothing, until the file can be read.
/// The [`Stamp`] is the version of the file that was read, for [`Reloader::spawn`].
pub fn load_initial(file: &AccessFile) -> (Access, Stamp) {
    let access = Access::new(file.mode, HashList::default());
    // Taken before reading, so that a change made while the workers start is not missed.
    let stamp = stamp(&file.path);
    if let Err(e) = load(file, &access, "at start") {
        let meaning = match file.mode {
            Mode::White => "every announce is refused",
            Mode::Black => "no announce is refused",
        };
        tracing::warn!(
            "{} {}: can't read it ({e}): {meaning} until it can be read (on SIGHUP or when it \
             changes); working directory {}",
            file.mode,
            file.path.display(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|e| format!("unknown ({e})")),
        );
    }
    (access, stamp)
}

/// The reload thread. Dropping it (or [`Reloader::stop`]) ends the thread.
pub struct Reloader {
    tx: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Reloader {
    /// Starts watching `file` for `access`, whose list was loaded from version `loaded` of it.
    pub fn spawn(file: AccessFile, access: Arc<Access>, loaded: Stamp) -> io::Result<Reloader> {
        let (tx, rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("accesslist".into())
            .spawn(move || watch(&file, &access, loaded, &rx))?;
        Ok(Reloader {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// Reloads now (SIGHUP), whether or not the file changed.
    pub fn reload(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(());
        }
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What identifies one version of the file (device, inode, size, mtime, ctime); `None` while
/// it can't be stat'ed.
pub type Stamp = Option<(u64, u64, u64, i64, i64, i64, i64)>;

fn stamp(path: &Path) -> Stamp {
    let m = fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

fn watch(file: &AccessFile, access: &Access, mut loaded: Stamp, rx: &mpsc::Receiver<()>) {
    // `loaded`: what was read (or tried) last; `seen`: what the previous poll saw.
    let mut seen = loaded;
    loop {
        match rx.recv_timeout(POLL) {
            Ok(()) => {
                loaded = stamp(&file.path);
                seen = loaded;
                reload(file, access, "SIGHUP");
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = stamp(&file.path);
                if now != loaded && now == seen {
                    loaded = now;
                    reload(file, access, "changed on disk");
                }
                seen = now;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn reload(file: &AccessFile, access: &Access, why: &str) {
    if let Err(e) = load(file, access, why) {
        tracing::warn!(
            "{} {}: reload ({why}) failed, can't read it ({e}); the previous list of {} \
             info_hashes stays in force",
            file.mode,
            file.path.display(),
            access.len()
        );
    }
}

/// Reads and parses an access-list file: the start, each reload and `--check-config` read it
/// the same way.
pub fn read(path: &Path) -> io::Result<Parsed> {
    Ok(HashList::parse(&fs::read(path)?))
}

/// Reads and parses the file and puts it in force; logs what was loaded.
fn load(file: &AccessFile, access: &Access, why: &str) -> io::Result<()> {
    let parsed = read(&file.path)?;
    let n = parsed.list.len();
    let skipped = parsed.skipped();
    access.replace(parsed.list);
    tracing::info!(
        "{} {}: {n} info_hashes loaded ({why})",
        file.mode,
        file.path.display()
    );
    if let Some(skipped) = skipped {
        tracing::warn!("{} {}: {skipped}", file.mode, file.path.display());
    }
    Ok(())
}

/// How often the file is looked at; a change is loaded one to two polls after it is made.
const POLL: Duration = Duration::from_secs(1);
