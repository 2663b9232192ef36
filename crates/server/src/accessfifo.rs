//! Dynamic access lists (`access.fifo_add`, `access.fifo_delete`; opentracker's
//! `WANT_DYNAMIC_ACCESSLIST`): one thread per FIFO reads hashes, one per line, and edits the
//! list in force ([`Access::edit`]).
//!
//! A FIFO that does not exist is created, mode 0600 (opentracker's 0755 lets any local user
//! open it for reading and so swallow other writers' lines). Whoever can write the FIFO edits
//! the access list, and whoever can read it can take lines meant for the tracker, so the start
//! stops, naming the key, the path and why, unless the path is a FIFO owned by the user the
//! tracker runs as (after the privilege drop: the FIFOs are opened after it) that neither group
//! nor others may read or write. A symbolic link is refused too, whatever it points at.
//!
//! What is checked is what is opened: the path is first opened with `O_PATH | O_NOFOLLOW`,
//! which takes a handle on whatever is there (a link itself, not its target) without opening
//! it (no device's open runs, no FIFO waits); type, owner and mode are read from that handle
//! (`fstat`), and only then is it opened for reading and writing through `/proc/self/fd/N`,
//! which reaches the very inode checked, whatever the path names by then. Where `/proc` is
//! not mounted (a chroot without it), the path is opened again instead (`O_NOFOLLOW`) and
//! kept only if it is the inode checked: someone who can write the FIFO's directory could
//! then, in the moment between the check and that open, put a device there, which would be
//! opened (and closed at once, never read). Mount `/proc` in the chroot, or keep the FIFOs in
//! a directory only the tracker's user can write. Either open is `O_NOCTTY`, so not even a
//! terminal becomes the tracker's controlling one.
//!
//! The FIFO is opened read-write and non-blocking: Linux keeps a FIFO opened so without
//! waiting for a writer, and since the tracker holds a write end itself it never sees
//! end-of-file when a writer leaves, so one open serves every writer in turn. The thread waits
//! in poll(2) and looks at its stop flag every [`TICK`].
//!
//! Lines are read as the access-list file's (40 hex digits at the start of the line, anything
//! after them ignored, blank lines and `#` comments skipped); a line becomes an edit only when
//! its newline has arrived, and all complete lines waiting (up to 1 MiB) are applied as one
//! edit. Other lines are logged and skipped; a line longer than [`MAX_FIFO_LINE`] is dropped.
//! The splitting and parsing is [`FifoLines`], in the core crate, without I/O (and fuzzed).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
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
/// user alone may read or write it (see the module docs).
fn open_fifo(path: &Path) -> io::Result<File> {
    let uid = nix::unistd::geteuid();
    match std::fs::symlink_metadata(path) {
        Ok(_) => {}
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
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)?;
    let checked = handle.metadata()?;
    check(&checked, uid.as_raw())?;
    open_checked(&handle, &checked, path, proc_fd_mounted())
}

/// Opens what `handle` (an `O_PATH` descriptor, `checked` its metadata) refers to for reading
/// and writing, non-blocking and never as a controlling terminal: through `/proc/self/fd`
/// where `via_proc`, else `path` again, not following a link, kept only if it is the inode
/// checked (see the module docs).
fn open_checked(
    handle: &File,
    checked: &std::fs::Metadata,
    path: &Path,
    via_proc: bool,
) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    let file = if via_proc {
        o.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(format!("/proc/self/fd/{}", handle.as_raw_fd()))
    } else {
        o.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
            .open(path)
    };
    let file = file.map_err(|e| {
        let uid = nix::unistd::geteuid();
        io::Error::new(
            e.kind(),
            format!("can't open the FIFO for reading and writing as uid {uid} ({e})"),
        )
    })?;
    let opened = file.metadata()?;
    if (opened.dev(), opened.ino()) != (checked.dev(), checked.ino()) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "was replaced between the check and the open (someone else can write its \
             directory: keep the FIFO in a directory only the tracker's user can write)",
        ));
    }
    Ok(file)
}

/// What the start would say of the FIFO at `path` for a tracker running as `uid`, without
/// creating or opening it (`--check-config`): `Ok(false)` if nothing is there yet (it will be
/// made), `Ok(true)` if it is a FIFO the tracker would use.
pub fn check_path(path: &Path, uid: u32) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => check(&m, uid).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Refuses what is not a FIFO, a symbolic link, a FIFO of another owner than `uid`, and one
/// that group or others may read or write.
fn check(m: &std::fs::Metadata, uid: u32) -> io::Result<()> {
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    if m.file_type().is_symlink() {
        return refuse(
            "is a symbolic link: name the FIFO itself (links are not followed, so no one who \
             can make one redirects the tracker)"
                .to_string(),
        );
    }
    if !m.file_type().is_fifo() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a FIFO (remove it, or name another path)",
        ));
    }
    if m.uid() != uid {
        return refuse(format!(
            "owned by uid {}, not by uid {uid} the tracker runs as: whoever owns it can let \
             others write to the access list (chown it to uid {uid}, or remove it and let the \
             tracker make it)",
            m.uid()
        ));
    }
    if m.mode() & 0o066 != 0 {
        return refuse(format!(
            "open to group or others (mode {:04o}): whoever may write it edits the access \
             list, and whoever may read it can take lines written for the tracker (chmod 600 \
             it)",
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Whether `/proc/self/fd` is the kernel's (procfs), not a directory anyone made in a chroot.
fn proc_fd_mounted() -> bool {
    nix::sys::statfs::statfs("/proc/self/fd")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A directory of its own under the system's temporary directory, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("ft-fifo-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir(&d).unwrap();
            Dir(d)
        }
        fn fifo(&self, name: &str, mode: u32) -> PathBuf {
            let p = self.0.join(name);
            nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn refusal(path: &Path) -> String {
        match open_fifo(path) {
            Ok(_) => panic!("{} was opened", path.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn refuses_what_others_could_read_write_or_redirect() {
        let d = Dir::new("check");
        let good = d.fifo("good", 0o600);
        open_fifo(&good).unwrap();
        for mode in [0o640, 0o604, 0o620, 0o602, 0o660, 0o606] {
            let p = d.fifo(&format!("m{mode:o}"), mode);
            let why = refusal(&p);
            assert!(
                why.contains(&format!("open to group or others (mode {mode:04o})")),
                "{why}"
            );
        }
        let link = d.0.join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert!(refusal(&link).contains("is a symbolic link"));
        let plain = d.0.join("plain");
        std::fs::write(&plain, "keep me\n").unwrap();
        assert!(refusal(&plain).contains("not a FIFO"));
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep me\n");
        // A device is refused by its handle, never opened.
        assert!(refusal(Path::new("/dev/null")).contains("not a FIFO"));
        // Missing: made, mode 0600.
        let made = d.0.join("made");
        open_fifo(&made).unwrap();
        let m = std::fs::symlink_metadata(&made).unwrap();
        assert!(m.file_type().is_fifo());
        assert_eq!(m.mode() & 0o777, 0o600);
    }

    /// The path is swapped for another FIFO between the check and the open: through
    /// `/proc/self/fd` the inode checked is opened all the same; by path again, the swap is
    /// seen and refused.
    #[test]
    fn opens_the_inode_checked_not_what_the_path_names_later() {
        assert!(proc_fd_mounted(), "/proc is procfs here");
        let d = Dir::new("swap");
        let path = d.fifo("fifo", 0o600);
        let handle = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
            .open(&path)
            .unwrap();
        let checked = handle.metadata().unwrap();
        let other = d.fifo("other", 0o666);
        std::fs::rename(&other, &path).unwrap();
        let f = open_checked(&handle, &checked, &path, true).unwrap();
        assert_eq!(f.metadata().unwrap().ino(), checked.ino());
        let why = open_checked(&handle, &checked, &path, false).unwrap_err();
        assert!(why.to_string().contains("was replaced"), "{why}");
    }
}
