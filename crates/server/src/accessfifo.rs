//! Dynamic access lists (`access.fifo_add`, `access.fifo_delete`; opentracker's
//! `WANT_DYNAMIC_ACCESSLIST`): one thread per FIFO reads hashes, one per line, and edits the
//! list in force ([`Access::edit`]).
//!
//! A FIFO that does not exist is created, mode 0600 (opentracker's 0755 lets any local user
//! open it for reading and so swallow other writers' lines). Whoever can write the FIFO edits
//! the access list, so the start stops, naming the key and the path, unless the path is a
//! FIFO owned by the user the tracker runs as (after the privilege drop: the FIFOs are opened
//! after it) that neither group nor others may write; a symbolic link is refused too, whatever
//! it points at (opened with `O_NOFOLLOW`). Owner and mode are read from the opened descriptor
//! (`fstat`), so nothing can be swapped in between the check and the use; a first look without
//! following links keeps a device or a regular file from being opened at all. The FIFO is
//! opened read-write and non-blocking: Linux keeps a FIFO
//! opened so without waiting for a writer, and since the tracker holds a write end itself it
//! never sees end-of-file when a writer leaves, so one open serves every writer in turn. The
//! thread waits in poll(2) and looks at its stop flag every [`TICK`].
//!
//! Lines are read as the access-list file's (40 hex digits at the start of the line, anything
//! after them ignored, blank lines and `#` comments skipped); a line becomes an edit only when
//! its newline has arrived, and all complete lines waiting (up to 1 MiB) are applied as one
//! edit. Other lines are logged and skipped; a line longer than [`MAX_FIFO_LINE`] is dropped.
//! The splitting and parsing is [`FifoLines`], in the core crate, without I/O (and fuzzed).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ferrotracker_core::access::{Access, Edit, FifoLines, MAX_FIFO_LINE};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// How often a waiting thread looks at its stop flag.
const TICK: Duration = Duration::from_millis(200);
/// Most bytes read before the hashes read so far are applied (about 25,000 lines).
const MAX_READ: usize = 1 << 20;

/// The FIFO threads. Dropping them (or [`Fifos::stop`]) ends the threads.
#[derive(Default)]
pub struct Fifos {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

/// Why a FIFO could not be set up: the path and what went wrong.
#[derive(Debug)]
pub struct FifoError {
    pub key: &'static str,
    pub path: PathBuf,
    pub error: io::Error,
}

impl std::fmt::Display for FifoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.key, self.path.display(), self.error)
    }
}

impl std::error::Error for FifoError {}

impl Fifos {
    /// Creates or opens the FIFOs the config names and starts a thread for each.
    pub fn spawn(
        add: Option<&Path>,
        delete: Option<&Path>,
        access: &Arc<Access>,
    ) -> Result<Fifos, FifoError> {
        let mut fifos = Fifos::default();
        for (key, path, edit) in [
            ("access.fifo_add", add, Edit::Add),
            ("access.fifo_delete", delete, Edit::Delete),
        ] {
            let Some(path) = path else { continue };
            let err = |error| FifoError {
                key,
                path: path.to_path_buf(),
                error,
            };
            let file = open_fifo(path).map_err(err)?;
            let (access, stop) = (Arc::clone(access), Arc::clone(&fifos.stop));
            let name = path.to_path_buf();
            let handle = std::thread::Builder::new()
                .name(key.to_string())
                .spawn(move || read_loop(file, &name, key, edit, &access, &stop))
                .map_err(err)?;
            tracing::info!("{key} {}: reading hashes", path.display());
            fifos.handles.push(handle);
        }
        Ok(fifos)
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Fifos {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Creates the FIFO if nothing is at `path`, opens it, and keeps it only if the tracker's
/// user alone may write it (see the module docs).
fn open_fifo(path: &Path) -> io::Result<File> {
    let uid = nix::unistd::geteuid();
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => return refuse(symlink()),
        Ok(m) if m.file_type().is_fifo() => {}
        Ok(_) => return Err(not_a_fifo()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)) {
                // Made by someone else meanwhile: checked below like any existing FIFO.
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => {
                    return Err(io::Error::other(format!(
                        "can't create the FIFO as uid {uid} ({e}): name a directory that user \
                         can write, or make the FIFO beforehand (mkfifo -m 0600, owned by that \
                         user)"
                    )))
                }
            }
        }
        Err(e) => return Err(e),
    }
    // The tracker's own write end: see the module docs.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .or_else(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refuse(symlink()),
            _ => Err(io::Error::new(
                e.kind(),
                format!("can't open the FIFO for reading and writing as uid {uid} ({e})"),
            )),
        })?;
    let m = file.metadata()?;
    if !m.file_type().is_fifo() {
        return Err(not_a_fifo());
    }
    if m.uid() != uid.as_raw() {
        return refuse(format!(
            "owned by uid {}, not by uid {uid} the tracker runs as: whoever owns it can let \
             others write to the access list (chown it to uid {uid}, or remove it and let the \
             tracker make it)",
            m.uid()
        ));
    }
    if m.mode() & 0o022 != 0 {
        return refuse(format!(
            "writable by group or others (mode {:04o}): they could edit the access list \
             (chmod 600 it)",
            m.mode() & 0o7777
        ));
    }
    Ok(file)
}

fn not_a_fifo() -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        "exists and is not a FIFO (remove it, or name another path)",
    )
}

fn symlink() -> String {
    "is a symbolic link: name the FIFO itself (links are not followed, so no one who can make \
     one redirects the tracker)"
        .to_string()
}

fn read_loop(
    mut file: File,
    path: &Path,
    key: &str,
    edit: Edit,
    access: &Access,
    stop: &AtomicBool,
) {
    let mut lines = FifoLines::default();
    let mut buf = [0u8; 8192];
    let mut hashes = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(TICK.as_millis() as u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!(
                    "{key} {}: poll failed ({e}); no longer read",
                    path.display()
                );
                return;
            }
        }
        // Everything waiting now (up to MAX_READ) is one edit: a bulk load through the FIFO
        // copies the edit sets once per read-out, not once per 8 KiB.
        hashes.clear();
        let mut skipped = 0;
        let mut taken = 0;
        while taken < MAX_READ {
            match file.read(&mut buf) {
                // EOF can't happen while we hold a write end; never spin on it.
                Ok(0) => {
                    std::thread::sleep(TICK);
                    break;
                }
                Ok(n) => {
                    taken += n;
                    skipped += lines.feed(&buf[..n], &mut hashes);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::error!(
                        "{key} {}: read failed ({e}); no longer read",
                        path.display()
                    );
                    return;
                }
            }
        }
        if skipped > 0 {
            tracing::warn!(
                "{key} {}: {skipped} lines skipped: not an info_hash (40 hex digits at the start \
                 of the line) or longer than {MAX_FIFO_LINE} bytes",
                path.display()
            );
        }
        if !hashes.is_empty() {
            access.edit(edit, &hashes);
            let (added, deleted) = access.edits();
            tracing::info!(
                "{key} {}: {} info_hashes {}; {added} added and {deleted} deleted since the list \
                 was loaded",
                path.display(),
                hashes.len(),
                match edit {
                    Edit::Add => "added",
                    Edit::Delete => "deleted",
                }
            );
        }
    }
}
