//! Access lists: which info_hashes a whitelist admits or a blacklist refuses (`access.whitelist`,
//! `access.blacklist`, `-w`, `-b`; spec §8).
//!
//! This module owns the file format and the lookup; it reads no file and starts no thread. The
//! server reads the file, parses it with [`HashList::parse`], and swaps the result in with
//! [`Access::replace`] at start, on SIGHUP and when the file changes. Announces ask
//! [`Access::allows`], which is a pointer load and a binary search: no lock that workers share,
//! no allocation. A reload swaps the whole list atomically (`arc_swap`), so an announce sees
//! either the old or the new list, never half of one; the old list is freed when the last
//! announce still reading it is done (opentracker frees it 5 minutes later instead).
//!
//! File format, as opentracker reads it: a line that starts with 40 hex digits (either case)
//! followed by a non-hex byte or the end of the file lists that hash; whatever follows the 40
//! digits is ignored (`HASH # comment`, `HASH name.iso`, a CRLF ending). Every other line is
//! skipped: blank lines and `#` comments silently, anything else (41 hex digits, a magnet link, a
//! hash indented by a space) is counted in [`Parsed::ignored`] so the server can log it.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use ferrotracker_proto::InfoHash;

/// What the list means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only listed hashes are tracked (`access.whitelist`, `-w`).
    White,
    /// Listed hashes are refused (`access.blacklist`, `-b`).
    Black,
}

impl Mode {
    /// `whitelist` / `blacklist`, for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Mode::White => "whitelist",
            Mode::Black => "blacklist",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A sorted list of info_hashes without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashList(Box<[InfoHash]>);

/// The result of parsing an access-list file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub list: HashList,
    /// Lines that were neither a hash, blank, nor a `#` comment.
    pub ignored: usize,
    /// 1-based number of the first such line, 0 if none.
    pub first_ignored: usize,
}

impl HashList {
    /// Parses opentracker's access-list format (see the module docs). Never fails: there is
    /// no line that makes the whole file unusable, as in opentracker.
    pub fn parse(text: &[u8]) -> Parsed {
        // opentracker sizes its list as filesize/41 (hash + newline).
        let mut hashes = Vec::with_capacity(text.len() / 41);
        let mut ignored = 0;
        let mut first_ignored = 0;
        for (index, line) in text.split(|&b| b == b'\n').enumerate() {
            match parse_line(line) {
                Line::Hash(h) => hashes.push(h),
                Line::Skip => {}
                Line::Ignored => {
                    ignored += 1;
                    if first_ignored == 0 {
                        first_ignored = index + 1;
                    }
                }
            }
        }
        Parsed {
            list: HashList::from(hashes),
            ignored,
            first_ignored,
        }
    }

    pub fn contains(&self, h: &InfoHash) -> bool {
        self.0.binary_search(h).is_ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<InfoHash>> for HashList {
    fn from(mut v: Vec<InfoHash>) -> Self {
        v.sort_unstable();
        v.dedup();
        HashList(v.into_boxed_slice())
    }
}

/// The tracker's access control: a mode fixed at start and a list that can be replaced while
/// workers read it.
pub struct Access {
    /// `None`: an open tracker, every hash allowed without looking at `list`.
    mode: Option<Mode>,
    list: ArcSwap<HashList>,
}

impl Access {
    /// No list: every hash is allowed.
    pub fn open() -> Self {
        Access {
            mode: None,
            list: ArcSwap::from_pointee(HashList::default()),
        }
    }

    /// A `mode` list starting with `list`. An empty whitelist refuses everything, an empty
    /// blacklist refuses nothing (opentracker's behaviour for a missing file).
    pub fn new(mode: Mode, list: HashList) -> Self {
        Access {
            mode: Some(mode),
            list: ArcSwap::from_pointee(list),
        }
    }

    pub fn mode(&self) -> Option<Mode> {
        self.mode
    }

    /// Whether an announce for `h` may be tracked. Lock-free and allocation-free.
    #[inline]
    pub fn allows(&self, h: &InfoHash) -> bool {
        match self.mode {
            None => true,
            Some(Mode::White) => self.list.load().contains(h),
            Some(Mode::Black) => !self.list.load().contains(h),
        }
    }

    /// Puts `list` in force for every announce from now on.
    pub fn replace(&self, list: HashList) {
        self.list.store(Arc::new(list));
    }

    /// Hashes in the list now in force.
    pub fn len(&self) -> usize {
        self.list.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Access {
    fn default() -> Self {
        Access::open()
    }
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("mode", &self.mode)
            .field("hashes", &self.len())
            .finish()
    }
}

enum Line {
    Hash(InfoHash),
    /// Blank (whitespace only) or a `#` comment.
    Skip,
    /// Anything else.
    Ignored,
}

fn parse_line(line: &[u8]) -> Line {
    let mut h = [0u8; 20];
    let hex_ok = line.len() >= 40
        && !matches!(line.get(40), Some(b) if b.is_ascii_hexdigit())
        && line[..40]
            .chunks_exact(2)
            .zip(h.iter_mut())
            .all(|(pair, out)| match (hex(pair[0]), hex(pair[1])) {
                (Some(hi), Some(lo)) => {
                    *out = hi << 4 | lo;
                    true
                }
                _ => false,
            });
    if hex_ok {
        Line::Hash(InfoHash(h))
    } else if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
        Line::Skip
    } else {
        Line::Ignored
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";
    const B: &str = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF";

    fn h(hex40: &str) -> InfoHash {
        match parse_line(hex40.as_bytes()) {
            Line::Hash(h) => h,
            _ => panic!("not a hash: {hex40}"),
        }
    }

    fn hashes(text: &str) -> Vec<InfoHash> {
        HashList::parse(text.as_bytes()).list.0.to_vec()
    }

    #[test]
    fn one_hash_per_line_any_case_any_ending() {
        let text = format!("{A}\n{B}\r\n");
        let p = HashList::parse(text.as_bytes());
        assert_eq!(p.list.len(), 2);
        assert_eq!(p.ignored, 0);
        assert!(p.list.contains(&h(A)));
        assert!(p.list.contains(&h(&A.to_uppercase())));
        assert!(p.list.contains(&InfoHash([0xff; 20])));
        assert_eq!(h(A).0[..3], [0x01, 0x23, 0x45]);
        // No newline after the last hash: EOF ends it.
        assert_eq!(hashes(A), vec![h(A)]);
        // CRLF throughout, and a bare CR ending.
        assert_eq!(hashes(&format!("{A}\r\n\r\n{B}\r")).len(), 2);
    }

    #[test]
    fn text_after_the_hash_is_ignored() {
        for line in [
            format!("{A} # ubuntu"),
            format!("{A}#x"),
            format!("{A}\tname.iso"),
            format!("{A}g"),
            format!("{A}:29926553:5"),
        ] {
            assert_eq!(hashes(&line), vec![h(A)], "{line:?}");
        }
    }

    #[test]
    fn non_hash_lines_are_skipped_and_counted() {
        let text = format!(
            "# my list\n\n   \n{A}0\n{}\n {A}\nmagnet:?xt=urn:btih:{A}\n{B}\n\u{0}\n",
            &A[..39]
        );
        let p = HashList::parse(text.as_bytes());
        assert_eq!(p.list.0.to_vec(), vec![h(B)]);
        // 41 digits, 39 digits, indented, magnet, NUL line; not the comment or blank lines.
        assert_eq!(p.ignored, 5);
        assert_eq!(p.first_ignored, 4);
    }

    #[test]
    fn empty_and_garbage_files() {
        assert!(HashList::parse(b"").list.is_empty());
        assert_eq!(HashList::parse(b"").ignored, 0);
        let p = HashList::parse(&[0xff, 0xfe, 0x00, b'\n', 0x80]);
        assert!(p.list.is_empty());
        assert_eq!((p.ignored, p.first_ignored), (2, 1));
        // A UTF-8 BOM hides the hash, as in opentracker.
        assert!(hashes(&format!("\u{feff}{A}")).is_empty());
    }

    #[test]
    fn sorted_and_deduplicated() {
        let text = format!("{B}\n{A}\n{}\n{A}\n", A.to_uppercase());
        let p = HashList::parse(text.as_bytes());
        assert_eq!(p.list.0.to_vec(), vec![h(A), h(B)]);
        let many: Vec<InfoHash> = (0..=255u8).rev().map(|i| InfoHash([i; 20])).collect();
        let l = HashList::from(many);
        assert!((0..=255u8).all(|i| l.contains(&InfoHash([i; 20]))));
        let mut near = [7u8; 20];
        near[19] = 8;
        assert!(!l.contains(&InfoHash(near)));
    }

    #[test]
    fn modes_and_replacement() {
        let (a, b) = (h(A), h(B));
        let open = Access::open();
        assert!(open.allows(&a) && open.mode().is_none());

        let white = Access::new(Mode::White, HashList::default());
        assert!(!white.allows(&a), "an empty whitelist refuses everything");
        white.replace(HashList::from(vec![a]));
        assert!(white.allows(&a) && !white.allows(&b));
        assert_eq!(white.len(), 1);

        let black = Access::new(Mode::Black, HashList::default());
        assert!(black.allows(&a), "an empty blacklist refuses nothing");
        black.replace(HashList::from(vec![a]));
        assert!(!black.allows(&a) && black.allows(&b));
        assert_eq!(
            format!("{:?}", black),
            "Access { mode: Some(Black), hashes: 1 }"
        );
        assert_eq!(Mode::White.to_string(), "whitelist");
    }

    #[test]
    fn never_panics_on_random_bytes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"0123456789abcdefABCDEFxyz# \r\n\t\x00\xff";
        for len in 0..600 {
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            let p = HashList::parse(&text);
            assert!(p.list.len() <= len / 40 + 1);
            assert!(p.list.0.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn readers_see_whole_lists_while_another_thread_replaces() {
        let even: Vec<InfoHash> = (0..64u8).map(|i| InfoHash([i * 2; 20])).collect();
        let odd: Vec<InfoHash> = (0..64u8).map(|i| InfoHash([i * 2 + 1; 20])).collect();
        let access = Arc::new(Access::new(Mode::White, HashList::from(even.clone())));
        let writer = {
            let access = Arc::clone(&access);
            std::thread::spawn(move || {
                for i in 0..2000 {
                    let l = if i % 2 == 0 { &odd } else { &even };
                    access.replace(HashList::from(l.clone()));
                }
            })
        };
        for _ in 0..20_000 {
            let n = access.len();
            assert_eq!(n, 64);
        }
        writer.join().unwrap();
    }
}
