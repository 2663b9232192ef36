//! Privilege drop, as opentracker does it: every socket is bound first (ports below 1024 too),
//! then, when running as root, chroot to the configured directory and switch to the configured
//! user and its group. Unlike opentracker, supplementary groups are cleared too, and an unknown
//! user is an error rather than a silent switch to uid -2.
//!
//! Not root: no chroot is possible, so only chdir to the directory (opentracker does the same).
//!
//! [`after_drop`] says where a path the configuration names is opened once this is done, so
//! that what is read before the drop (the TLS pair) and `--check-config` look at the same file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::unistd::{self, Gid, Uid, User};

/// Where the process ended up, for the log.
#[derive(Debug)]
pub struct Dropped {
    pub uid: u32,
    pub gid: u32,
    pub root: Option<PathBuf>,
}

/// Where the file `p` names is, as seen from here and now, once [`drop_privileges`] has run with
/// `rootdir` (`root`: the process is root, so it chroots): under `rootdir` after a chroot
/// (`/etc/t/cert.pem` with `/srv/t` is `/srv/t/etc/t/cert.pem`), relative to it after a change
/// of directory, else `p` itself.
pub fn after_drop(p: &Path, rootdir: Option<&Path>, root: bool) -> PathBuf {
    match rootdir {
        Some(dir) if root => dir.join(p.strip_prefix("/").unwrap_or(p)),
        Some(dir) => dir.join(p),
        None => p.to_path_buf(),
    }
}

/// Chroots to `rootdir` (if set) and becomes `user` (default "nobody") when running as root;
/// only changes directory to `rootdir` otherwise. Call after binding, before reading any
/// file named in the config.
pub fn drop_privileges(
    rootdir: Option<&Path>,
    user: Option<&str>,
) -> anyhow::Result<Option<Dropped>> {
    if !Uid::effective().is_root() {
        if let Some(dir) = rootdir {
            std::env::set_current_dir(dir)
                .with_context(|| format!("changing directory to {}", dir.display()))?;
        }
        return Ok(None);
    }
    let name = user.unwrap_or("nobody");
    // Look the user up before chroot: the new root usually has no /etc/passwd.
    let u = User::from_name(name)
        .with_context(|| format!("looking up user {name}"))?
        .with_context(|| format!("user {name} does not exist"))?;
    if let Some(dir) = rootdir {
        unistd::chroot(dir).with_context(|| format!("Could not chroot to {}", dir.display()))?;
        unistd::chdir("/").context("changing directory to the new root")?;
    }
    unistd::setgroups(&[u.gid]).context("clearing supplementary groups")?;
    unistd::setgid(u.gid).with_context(|| format!("switching to group {}", u.gid))?;
    unistd::setuid(u.uid).with_context(|| format!("switching to user {name}"))?;
    if Uid::effective().is_root() || Gid::effective().as_raw() == 0 && u.gid.as_raw() != 0 {
        bail!("still running as root after switching to {name}");
    }
    Ok(Some(Dropped {
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        root: rootdir.map(Path::to_path_buf),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_as_they_are_opened_after_the_drop() {
        let d = Some(Path::new("/srv/t"));
        let at = |p: &str, d, root| after_drop(Path::new(p), d, root);
        assert_eq!(at("/w.txt", d, true), Path::new("/srv/t/w.txt"));
        assert_eq!(at("w.txt", d, true), Path::new("/srv/t/w.txt"));
        assert_eq!(at("tls/c.pem", d, true), Path::new("/srv/t/tls/c.pem"));
        assert_eq!(at("w.txt", d, false), Path::new("/srv/t/w.txt"));
        assert_eq!(at("/w.txt", d, false), Path::new("/w.txt"));
        assert_eq!(at("w.txt", None, true), Path::new("w.txt"));
        assert_eq!(at("/w.txt", None, false), Path::new("/w.txt"));
    }
}
