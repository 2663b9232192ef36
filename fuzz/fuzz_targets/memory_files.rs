//! The system files the default memory ceiling is read from (`/proc/meminfo`,
//! `/proc/self/cgroup`, cgroup limit files): `ferrotracker_core::memory`'s parsers. Beyond "no
//! panic": a cgroup's ancestors end (at the root, for an absolute path), each one a prefix of the one before, and the
//! ceiling is never above the smaller of the two sizes it is given.
#![no_main]

use ferrotracker_core::memory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let total = memory::meminfo_total(text);
    let limit = memory::cgroup_limit(text);
    if let Some((ceiling, _)) = memory::default_ceiling(total, limit) {
        assert!(total.map_or(true, |t| ceiling <= t) && limit.map_or(true, |l| ceiling <= l));
    }
    let (v2, v1) = memory::cgroup_paths(text);
    for path in [v2, v1].into_iter().flatten() {
        let mut last: Option<&str> = None;
        let mut n = 0;
        for dir in memory::cgroup_ancestors(path) {
            n += 1;
            assert!(n <= path.len() + 1, "ancestors of {path:?} never end");
            if let Some(l) = last {
                assert!(
                    l.starts_with(dir) || dir == "/",
                    "{dir:?} is not above {l:?}"
                );
            }
            last = Some(dir);
        }
        if path.starts_with('/') {
            assert_eq!(last, Some("/"), "ancestors of {path:?} end at the root");
        }
    }
});
