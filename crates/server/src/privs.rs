//! Privilege drop, as opentracker does it: every socket is bound first (ports below 1024 too),
//! then, when running as root, chroot to the configured directory and switch to the configured
//! user and its group. Unlike opentracker, supplementary groups are cleared too, and an unknown
//! user is an error rather than a silent switch to uid -2.
//!
//! Not root: no chroot is possible, so only chdir to the directory (opentracker does the same).

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
