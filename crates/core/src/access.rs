//! Access lists: which info_hashes a whitelist admits or a blacklist refuses (`access.whitelist`,
//! `access.blacklist`, `-w`, `-b`; opentracker's [`ot_accesslist.c`](https://erdgeist.org/gitweb/opentracker/tree/ot_accesslist.c)).
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
//!
//! Dynamic lists (opentracker's `WANT_DYNAMIC_ACCESSLIST`, `access.fifo_add` and
//! `access.fifo_delete`): hashes written to the FIFOs are [`Access::edit`]ed into two small sets
//! beside the file's list. A hash is listed when it is in the file or was added, and was not
//! deleted since; the last FIFO to name a hash wins. Reloading the file empties both sets, as
//! opentracker's SIGHUP does (the file is then taken to hold what the FIFOs said). The file's
//! list, the added and the deleted hashes are one snapshot, swapped in whole: an announce sees a
//! FIFO line either applied or not. (opentracker's implementation of this checks deletions in
//! the added set and loses list entries on copy; this follows its documented behaviour.)

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

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

impl Parsed {
    /// What to tell the operator about the lines that were skipped, if any.
    pub fn skipped(&self) -> Option<String> {
        (self.ignored > 0).then(|| {
            format!(
                "{} lines are not info_hashes (40 hex digits at the start of the line) and are \
                 skipped, the first at line {}",
                self.ignored, self.first_ignored
            )
        })
    }
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

    /// The hashes, sorted.
    pub fn as_slice(&self) -> &[InfoHash] {
        &self.0
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

/// What a dynamic-list FIFO does with the hashes written to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// `access.fifo_add`: the hash is listed (tracked by a whitelist, refused by a blacklist).
    Add,
    /// `access.fifo_delete`: the hash is no longer listed, even if the file lists it.
    Delete,
}

/// One snapshot of what is listed: the file's list and the FIFOs' edits since it was loaded.
/// `added` and `deleted` never share a hash.
#[derive(Debug, Default)]
struct Lists {
    /// Shared between snapshots: an edit copies only the small sets.
    file: Arc<HashList>,
    added: HashList,
    deleted: HashList,
}

impl Lists {
    #[inline]
    fn listed(&self, h: &InfoHash) -> bool {
        (self.file.contains(h) || self.added.contains(h)) && !self.deleted.contains(h)
    }
}

/// The tracker's access control: a mode fixed at start and lists that can be replaced and
/// edited while workers read them.
pub struct Access {
    /// `None`: an open tracker, every hash allowed without looking at `lists`.
    mode: Option<Mode>,
    lists: ArcSwap<Lists>,
    /// Serialises writers (a reload and the two FIFOs), so that no edit is lost between one
    /// writer's load and its store. Announces never take it.
    writer: Mutex<()>,
}

impl Access {
    /// No list: every hash is allowed.
    pub fn open() -> Self {
        Access {
            mode: None,
            lists: ArcSwap::from_pointee(Lists::default()),
            writer: Mutex::new(()),
        }
    }

    /// A `mode` list starting with `list`. An empty whitelist refuses everything, an empty
    /// blacklist refuses nothing (opentracker's behaviour for a missing file).
    pub fn new(mode: Mode, list: HashList) -> Self {
        Access {
            mode: Some(mode),
            lists: ArcSwap::from_pointee(Lists {
                file: Arc::new(list),
                ..Lists::default()
            }),
            writer: Mutex::new(()),
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
            Some(Mode::White) => self.lists.load().listed(h),
            Some(Mode::Black) => !self.lists.load().listed(h),
        }
    }

    /// Puts the file's `list` in force for every announce from now on, and forgets the FIFOs'
    /// edits (opentracker's SIGHUP).
    pub fn replace(&self, list: HashList) {
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.lists.store(Arc::new(Lists {
            file: Arc::new(list),
            ..Lists::default()
        }));
    }

    /// Applies one batch of FIFO lines: `Add` lists `hashes`, `Delete` unlists them; either
    /// undoes an earlier edit of the other kind. Copies the edit sets, not the file's list.
    pub fn edit(&self, edit: Edit, hashes: &[InfoHash]) {
        if hashes.is_empty() {
            return;
        }
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.lists.load_full();
        let mut added: BTreeSet<InfoHash> = old.added.0.iter().copied().collect();
        let mut deleted: BTreeSet<InfoHash> = old.deleted.0.iter().copied().collect();
        let (grow, shrink) = match edit {
            Edit::Add => (&mut added, &mut deleted),
            Edit::Delete => (&mut deleted, &mut added),
        };
        for h in hashes {
            shrink.remove(h);
            grow.insert(*h);
        }
        let set = |s: BTreeSet<InfoHash>| HashList(s.into_iter().collect());
        self.lists.store(Arc::new(Lists {
            file: Arc::clone(&old.file),
            added: set(added),
            deleted: set(deleted),
        }));
    }

    /// Hashes in the file's list now in force.
    pub fn len(&self) -> usize {
        self.lists.load().file.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hashes added and deleted through the FIFOs since the file was last loaded.
    pub fn edits(&self) -> (usize, usize) {
        let l = self.lists.load();
        (l.added.len(), l.deleted.len())
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

/// Longest dynamic-list FIFO line kept while waiting for its newline (a hash line is 41 bytes).
pub const MAX_FIFO_LINE: usize = 4096;

/// Splits what a dynamic-list FIFO delivers, in reads of any size, into lines and parses each
/// complete line as a line of the list file. A line counts only once its newline has come (a
/// writer may be cut between two reads); a line longer than [`MAX_FIFO_LINE`] is skipped, and
/// not kept while its newline is awaited, so no writer can make the tracker hold an unbounded
/// line.
#[derive(Debug, Default)]
pub struct FifoLines {
    partial: Vec<u8>,
    /// The partial line grew past `MAX_FIFO_LINE`: drop bytes up to the next newline.
    overlong: bool,
}

impl FifoLines {
    /// Appends the hashes of the lines that `bytes` completes to `out`; returns how many
    /// complete lines were skipped (not a hash, or too long).
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<InfoHash>) -> usize {
        let mut skipped = 0;
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(i);
            rest = after.get(1..).unwrap_or_default();
            if self.overlong {
                self.overlong = false;
                self.partial.clear();
                skipped += 1;
                continue;
            }
            let whole: &[u8] = if self.partial.is_empty() {
                line
            } else {
                self.partial.extend_from_slice(line);
                &self.partial
            };
            // Too long is too long however the reads fell.
            match parse_line(whole) {
                _ if whole.len() > MAX_FIFO_LINE => skipped += 1,
                Line::Hash(h) => out.push(h),
                Line::Skip => {}
                Line::Ignored => skipped += 1,
            }
            self.partial.clear();
        }
        if !self.overlong {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_FIFO_LINE {
                self.overlong = true;
                self.partial.clear();
            }
        }
        skipped
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
    let hash = line
        .get(..40)
        .filter(|_| !matches!(line.get(40), Some(b) if b.is_ascii_hexdigit()))
        .and_then(InfoHash::from_hex);
    if let Some(h) = hash {
        Line::Hash(h)
    } else if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
        Line::Skip
    } else {
        Line::Ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotracker_proto::testutil::random_bytes;

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
    fn fifo_lines_split_across_reads_and_overlong_lines() {
        let feed = |l: &mut FifoLines, s: &[u8]| {
            let mut out = Vec::new();
            let skipped = l.feed(s, &mut out);
            (out, skipped)
        };
        let mut l = FifoLines::default();
        let (hs, s) = feed(&mut l, &A.as_bytes()[..13]);
        assert!(hs.is_empty() && s == 0, "no newline yet: nothing applied");
        let (hs, s) = feed(
            &mut l,
            format!("{}\nnot a hash\n\n# c\nFF", &A[13..]).as_bytes(),
        );
        assert_eq!((hs, s), (vec![h(A)], 1));
        let (hs, _) = feed(&mut l, format!("{}\r\n", &"F".repeat(38)).as_bytes());
        assert_eq!(hs, vec![h(B)]);
        // A line with no end in sight is dropped whole, and what follows is read again.
        let (hs, s) = feed(&mut l, &vec![b'a'; MAX_FIFO_LINE + 10]);
        assert!(hs.is_empty() && s == 0);
        let (hs, s) = feed(&mut l, format!("{A}\n{A}\n").as_bytes());
        assert_eq!(
            (hs.len(), s),
            (1, 1),
            "the overlong line ends at its newline"
        );
        // The same whether the long line came in one read or several; at the limit it counts.
        let long = format!("{A}{}\n", " ".repeat(MAX_FIFO_LINE));
        assert_eq!(feed(&mut l, long.as_bytes()), (vec![], 1));
        let limit = format!("{A}{}\n", " ".repeat(MAX_FIFO_LINE - 40));
        assert_eq!(feed(&mut l, limit.as_bytes()), (vec![h(A)], 0));
    }

    #[test]
    fn fifo_edits_over_the_file_list() {
        let (a, b, c) = (h(A), h(B), InfoHash([7; 20]));
        let white = Access::new(Mode::White, HashList::from(vec![a]));
        white.edit(Edit::Add, &[b, c]);
        assert!(white.allows(&a) && white.allows(&b) && white.allows(&c));
        white.edit(Edit::Delete, &[a, b]);
        assert!(!white.allows(&a) && !white.allows(&b) && white.allows(&c));
        assert_eq!(white.edits(), (1, 2));
        white.edit(Edit::Add, &[b]);
        assert!(white.allows(&b), "the later edit wins");
        assert_eq!((white.len(), white.edits()), (1, (2, 1)));
        // A reload is the whole truth again.
        white.replace(HashList::from(vec![c]));
        assert!(!white.allows(&a) && !white.allows(&b) && white.allows(&c));
        assert_eq!(white.edits(), (0, 0));

        let black = Access::new(Mode::Black, HashList::from(vec![a]));
        black.edit(Edit::Add, &[b]);
        black.edit(Edit::Delete, &[a]);
        assert!(black.allows(&a) && !black.allows(&b) && black.allows(&c));
        // An open tracker has nothing to edit, whatever is said to it.
        let open = Access::open();
        open.edit(Edit::Delete, &[a]);
        assert!(open.allows(&a));
    }

    #[test]
    fn never_panics_on_random_bytes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"0123456789abcdefABCDEFxyz# \r\n\t\x00\xff";
        for len in 0..600 {
            let text = random_bytes(&mut x, alphabet, len);
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
