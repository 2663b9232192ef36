//! Access-list files (`access::HashList::parse`), as `-w`/`-b` and `access.whitelist` /
//! `access.blacklist` read them.
//!
//! Beyond "no panic": every line that opentracker's rule accepts (40 hex digits, then a non-hex
//! byte or the end) is in the list, the list has no more entries than such lines, the count of
//! ignored lines adds up, and a whitelist/blacklist built from the list answers accordingly.
//! The same bytes read through a dynamic-list FIFO (`access::FifoLines`), cut into reads at
//! arbitrary places, give the same hashes for every complete line; FIFO edits of the lists
//! answer as documented.
#![no_main]

use ferrotracker_core::access::{Access, Edit, FifoLines, HashList, Mode, MAX_FIFO_LINE};
use ferrotracker_proto::InfoHash;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = HashList::parse(data);
    let lines = data.split(|&b| b == b'\n').count();
    assert!(parsed.ignored <= lines);
    assert_eq!(parsed.ignored == 0, parsed.first_ignored == 0);
    assert!(parsed.first_ignored <= lines);

    let listed: Vec<InfoHash> = data.split(|&b| b == b'\n').filter_map(hash_line).collect();
    assert!(parsed.list.len() <= listed.len());
    assert!(parsed.list.len() + parsed.ignored <= lines);
    let white = Access::new(Mode::White, parsed.list.clone());
    let black = Access::new(Mode::Black, parsed.list.clone());
    for h in &listed {
        assert!(parsed.list.contains(h), "{h:?} listed but not found");
        assert!(white.allows(h) && !black.allows(h));
    }
    if listed.is_empty() {
        assert!(parsed.list.is_empty());
    }
    let other = InfoHash([0x5a; 20]);
    assert_eq!(white.allows(&other), parsed.list.contains(&other));
    assert!(Access::open().allows(&other));

    // The list written back as a file parses to the same list.
    let mut again = Vec::new();
    for h in &listed {
        ferrotracker_proto::hex::push_upper(&mut again, &h.0);
        again.extend_from_slice(b" # comment\r\n");
    }
    let reparsed = HashList::parse(&again);
    assert_eq!(reparsed.list, parsed.list);
    assert_eq!(reparsed.ignored, 0);

    // Through a FIFO, in reads of 1 to 61 bytes.
    let mut fifo = FifoLines::default();
    let mut got = Vec::new();
    let step = 1 + data.first().map_or(0, |&b| usize::from(b) % 61);
    for chunk in data.chunks(step) {
        fifo.feed(chunk, &mut got);
    }
    let complete = match data.iter().rposition(|&b| b == b'\n') {
        Some(i) => &data[..i],
        None => &data[..0],
    };
    if !data.contains(&b'\n') {
        assert!(got.is_empty(), "a hash without its newline");
    } else {
        // However the reads fell: lines over MAX_FIFO_LINE are skipped, the rest read as files.
        let want: Vec<InfoHash> = complete
            .split(|&b| b == b'\n')
            .filter(|l| l.len() <= MAX_FIFO_LINE)
            .filter_map(hash_line)
            .collect();
        assert_eq!(got, want);
    }

    // Edits: added hashes are listed, deleted ones are not, whatever the file says.
    let (add, del) = got.split_at(got.len() / 2);
    white.edit(Edit::Add, add);
    black.edit(Edit::Delete, del);
    for h in add {
        assert!(white.allows(h));
    }
    for h in del {
        assert!(black.allows(h));
    }
    white.edit(Edit::Delete, add);
    for h in add {
        assert!(!white.allows(h));
    }
});

/// opentracker's rule, written independently: 40 hex digits at the start of the line, followed
/// by a byte that is not a hex digit, or by the end of the line.
fn hash_line(line: &[u8]) -> Option<InfoHash> {
    let digits = line.get(..40)?;
    if line.get(40).is_some_and(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut h = [0u8; 20];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        if !pair.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        h[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(InfoHash(h))
}
