//! Tests that need what a fresh machine may lack (python3-libtorrent, network namespaces,
//! root): skipped with a note on a developer's machine, failed in CI.

use std::io::Write;

/// For a test that needs what a fresh machine may lack (python3-libtorrent, network
/// namespaces, root): `check` is `Ok` with what the test needs, or `Err` saying what is missing.
///
/// Missing, and `CI` unset (a developer's `cargo test`): prints which test is skipped, why, and
/// how to run it, and returns `None`; the caller returns without asserting anything. Missing
/// with `CI` set (`scripts/test.sh` in CI, which runs as root and installs everything): the
/// test fails, since there a missing dependency is a broken setup, not a reason to skip.
pub fn require_or_skip<T>(dependency: &str, check: Result<T, String>) -> Option<T> {
    let why = match check {
        Ok(v) => return Some(v),
        Err(why) => why,
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    if ci() {
        panic!("{test} needs {dependency}, which is required when CI is set: {why}");
    }
    // Straight to stderr, not `eprintln!`: the test harness would capture that and show it
    // only for a failing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs {dependency}: {why}. `bash scripts/test.sh` (as root) installs \
         and runs everything; with CI set, a missing dependency fails the test instead."
    );
    None
}

/// `CI` is set to anything but empty (CI services set `CI=true`).
pub fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// `Ok` when running as root (privilege drop, chroot and network namespaces need it).
pub fn root() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err("not running as root".into())
    }
}
