//! opentracker-style configuration: the config file (`config::parse_str`) and, from the same
//! bytes split on whitespace, the command line (`config::parse_args`).
//!
//! Beyond "no panic": errors name a line inside the file and render; a config that parses
//! either validates or says why; parsing never touches the file system (`-f` is skipped here,
//! since it reads a file by design).
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use ferrotracker_core::config::{self, Command, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut cfg = Config::default();
    match config::parse_str(Path::new("fuzz.conf"), &text, &mut cfg) {
        Ok(()) => {
            if let Err(e) = cfg.validate() {
                assert!(!e.to_string().is_empty());
            }
            let _ = cfg.stats_readers();
            // --print-config reads back as the same configuration.
            let printed = config::print(&cfg);
            let mut back = Config::default();
            config::parse_str(Path::new("printed.conf"), &printed, &mut back)
                .unwrap_or_else(|e| panic!("{e}\n{printed}"));
            back.livesync.key_file = cfg.livesync.key_file.clone();
            assert_eq!(back, cfg, "{printed}");
        }
        Err(e) => {
            assert!(
                e.line >= 1 && e.line <= text.lines().count(),
                "line {}",
                e.line
            );
            assert!(!e.to_string().is_empty());
        }
    }

    let args: Vec<OsString> = data
        .split(|b| b.is_ascii_whitespace())
        .filter(|a| !a.is_empty())
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    if args.len() > 64 || args.iter().any(|a| a.as_encoded_bytes().starts_with(b"-f")) {
        return;
    }
    match config::parse_args(args) {
        Ok(Command::Run(cfg) | Command::PrintConfig(cfg) | Command::CheckConfig(cfg)) => {
            assert!(!cfg.listen.is_empty());
            assert!(cfg.validate().is_ok());
        }
        Ok(Command::Help | Command::Version) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
