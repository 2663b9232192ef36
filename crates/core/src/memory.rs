//! The swarm's default memory ceiling, derived from the machine: the smaller of physical
//! memory and the cgroup's memory limit, halved.
//!
//! Pure: the server reads `/proc/meminfo`, `/proc/self/cgroup` and the cgroup files (before it
//! drops privileges or chroots) and hands their text in; nothing here touches a file.
//!
//! Why half: the ceiling bounds the store's *estimate* of its own heap (torrent entries and peer
//! records, [`ferrotracker_swarm::Store::estimated_bytes`]). The process needs room beyond it:
//! allocator slack and freed-but-resident pages, up to `http.max_connections` connections with
//! their buffers, streamed full scrapes and statedumps, the rate limiter's table, and the
//! kernel's socket buffers, which a cgroup v2 limit charges to the tracker too. Half leaves that
//! room on a small box, and an operator with a dedicated large one raises it with
//! `tracker.max_memory_mb`.

/// Numerator and denominator of the share of the machine's memory the swarm may estimate.
pub const SHARE: (u64, u64) = (1, 2);

/// Where the memory the default ceiling is a share of was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `MemTotal` of `/proc/meminfo` (or the system's page count).
    Physical,
    /// The cgroup's `memory.max` (v2) or `memory.limit_in_bytes` (v1), below physical memory.
    Cgroup,
}

/// The default ceiling: [`SHARE`] of the smaller of `physical` and `cgroup` bytes, and which
/// one that was; `None` when neither is known.
pub fn default_ceiling(physical: Option<u64>, cgroup: Option<u64>) -> Option<(u64, Source)> {
    let (bytes, from) = match (physical, cgroup) {
        (Some(p), Some(c)) if c < p => (c, Source::Cgroup),
        (Some(p), _) => (p, Source::Physical),
        (None, Some(c)) => (c, Source::Cgroup),
        (None, None) => return None,
    };
    Some((bytes / SHARE.1 * SHARE.0, from))
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
pub fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => n.checked_mul(1024),
        None => Some(n),
        Some(_) => None,
    }
}

/// A cgroup memory limit file's value in bytes: v2 `memory.max` ("max" = none) or v1
/// `memory.limit_in_bytes` (a number near 2^63 = none).
pub fn cgroup_limit(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "max" {
        return None;
    }
    let n: u64 = t.parse().ok()?;
    // cgroup v1 writes "no limit" as LONG_MAX rounded down to a page.
    (n < 1 << 62).then_some(n)
}

/// The memory cgroup of this process from `/proc/self/cgroup`: the v2 path (line `0::PATH`)
/// and the v1 path of the `memory` controller (line `N:...memory...:PATH`), each relative to
/// its hierarchy's mount.
pub fn cgroup_paths(text: &str) -> (Option<&str>, Option<&str>) {
    let (mut v2, mut v1) = (None, None);
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(ctrl), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if id == "0" && ctrl.is_empty() {
            v2 = Some(path);
        } else if ctrl.split(',').any(|c| c == "memory") {
            v1 = Some(path);
        }
    }
    (v2, v1)
}

/// The directories from a cgroup's own up to its hierarchy's root (`/`), innermost first: a
/// limit set on a parent (a systemd slice, a container) binds the processes below it, so the
/// effective limit is the smallest along the way.
pub fn cgroup_ancestors(path: &str) -> impl Iterator<Item = &str> {
    let path = path.trim_end_matches('/');
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = match cur.rfind('/') {
            Some(0) if cur.len() > 1 => Some("/"),
            Some(i) if i > 0 => Some(&cur[..i]),
            _ => None,
        };
        Some(if cur.is_empty() { "/" } else { cur })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str =
        "MemTotal:       16318480 kB\nMemFree:         1203460 kB\nMemAvailable:    9912788 kB\n";

    #[test]
    fn reads_physical_memory() {
        assert_eq!(meminfo_total(MEMINFO), Some(16_318_480 * 1024));
        assert_eq!(meminfo_total("MemFree: 1 kB\n"), None);
        assert_eq!(meminfo_total("MemTotal: lots kB\n"), None);
        assert_eq!(meminfo_total("MemTotal: 5 MB\n"), None);
        assert_eq!(meminfo_total(""), None);
    }

    #[test]
    fn reads_cgroup_limits_of_both_versions() {
        assert_eq!(cgroup_limit("max\n"), None);
        assert_eq!(cgroup_limit("536870912\n"), Some(512 << 20));
        assert_eq!(cgroup_limit("9223372036854771712\n"), None, "v1 unlimited");
        assert_eq!(cgroup_limit("garbage"), None);
        assert_eq!(cgroup_limit(""), None);
    }

    #[test]
    fn finds_the_memory_cgroup() {
        let v2 = "0::/system.slice/ferrotracker.service\n";
        assert_eq!(
            cgroup_paths(v2),
            (Some("/system.slice/ferrotracker.service"), None)
        );
        let v1 = "12:pids:/a\n4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n";
        assert_eq!(cgroup_paths(v1), (None, Some("/docker/abc")));
        let hybrid = "5:cpuset,memory:/x\n0::/y\n";
        assert_eq!(cgroup_paths(hybrid), (Some("/y"), Some("/x")));
        assert_eq!(cgroup_paths("nonsense\n"), (None, None));
        let up: Vec<&str> = cgroup_ancestors("/system.slice/ft.service").collect();
        assert_eq!(up, ["/system.slice/ft.service", "/system.slice", "/"]);
        assert_eq!(cgroup_ancestors("/").collect::<Vec<_>>(), ["/"]);
    }

    #[test]
    fn the_ceiling_is_half_the_smaller_of_machine_and_cgroup() {
        let gib = 1u64 << 30;
        assert_eq!(
            default_ceiling(Some(16 * gib), None),
            Some((8 * gib, Source::Physical))
        );
        // A container limited to 1 GiB on a 16 GiB host.
        assert_eq!(
            default_ceiling(Some(16 * gib), Some(gib)),
            Some((gib / 2, Source::Cgroup))
        );
        // A cgroup limit above physical memory binds nothing.
        assert_eq!(
            default_ceiling(Some(4 * gib), Some(64 * gib)),
            Some((2 * gib, Source::Physical))
        );
        assert_eq!(
            default_ceiling(None, Some(gib)),
            Some((gib / 2, Source::Cgroup))
        );
        assert_eq!(default_ceiling(None, None), None);
        // From the texts a host would show.
        let phys = meminfo_total(MEMINFO);
        let cg = cgroup_limit("268435456\n");
        assert_eq!(default_ceiling(phys, cg), Some((128 << 20, Source::Cgroup)));
    }
}
