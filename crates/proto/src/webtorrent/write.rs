//! The writers: every message of the protocol, server and client side, appended to a buffer,
//! binary strings written as the browser's `JSON.stringify` writes them.

use super::*;

/// Appends an announce reply: the swarm's seeders and leechers and the announce interval in
/// seconds (`counts.downloaded` is not part of it).
pub fn write_announce_reply(
    out: &mut Vec<u8>,
    info_hash: &InfoHash,
    counts: Counts,
    interval: u32,
) {
    out.extend_from_slice(b"{\"action\":\"announce\",\"info_hash\":");
    write_binary(out, &info_hash.0);
    write_number_member(out, b",\"complete\":", counts.complete.into());
    write_number_member(out, b",\"incomplete\":", counts.incomplete.into());
    write_number_member(out, b",\"interval\":", interval.into());
    out.push(b'}');
}

/// Appends an offer relayed to another peer of the swarm: `from` is the offerer, and
/// `offer.offer` is written as received.
pub fn write_offer(out: &mut Vec<u8>, info_hash: &InfoHash, from: &PeerId, offer: &Offer<'_>) {
    out.extend_from_slice(b"{\"action\":\"announce\",\"info_hash\":");
    write_binary(out, &info_hash.0);
    out.extend_from_slice(b",\"peer_id\":");
    write_binary(out, &from.0);
    out.extend_from_slice(b",\"offer_id\":");
    write_binary(out, &offer.offer_id.0);
    out.extend_from_slice(b",\"offer\":");
    out.extend_from_slice(offer.offer.as_bytes());
    out.push(b'}');
}

/// Appends an answer relayed to the offerer: `from` is the answering peer, and `answer` (an
/// [`Answer::answer`]) is written as received.
pub fn write_answer(
    out: &mut Vec<u8>,
    info_hash: &InfoHash,
    from: &PeerId,
    offer_id: &OfferId,
    answer: &str,
) {
    out.extend_from_slice(b"{\"action\":\"announce\",\"info_hash\":");
    write_binary(out, &info_hash.0);
    out.extend_from_slice(b",\"peer_id\":");
    write_binary(out, &from.0);
    out.extend_from_slice(b",\"offer_id\":");
    write_binary(out, &offer_id.0);
    out.extend_from_slice(b",\"answer\":");
    out.extend_from_slice(answer.as_bytes());
    out.push(b'}');
}

/// Appends a scrape reply with one entry per file, in the order given.
pub fn write_scrape_reply<I>(out: &mut Vec<u8>, files: I)
where
    I: IntoIterator<Item = (InfoHash, Counts)>,
{
    out.extend_from_slice(b"{\"action\":\"scrape\",\"files\":{");
    for (i, (hash, counts)) in files.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_binary(out, &hash.0);
        write_number_member(out, b":{\"complete\":", counts.complete.into());
        write_number_member(out, b",\"incomplete\":", counts.incomplete.into());
        write_number_member(out, b",\"downloaded\":", counts.downloaded.into());
        out.push(b'}');
    }
    out.extend_from_slice(b"}}");
}

/// Appends an error reply. The client ignores one without its `info_hash` for an announce,
/// so pass [`Error::info_hash`] when there is one.
pub fn write_error(out: &mut Vec<u8>, action: Action, info_hash: Option<&InfoHash>, reason: &str) {
    out.extend_from_slice(b"{\"action\":\"");
    out.extend_from_slice(action.as_str().as_bytes());
    out.extend_from_slice(b"\",\"failure reason\":");
    write_text(out, reason);
    if let Some(h) = info_hash {
        out.extend_from_slice(b",\"info_hash\":");
        write_binary(out, &h.0);
    }
    out.push(b'}');
}

/// Appends an announce request as the reference client writes it (a client's side: the load
/// generator, the tests). `None` counters are left out.
pub fn write_announce_request(out: &mut Vec<u8>, a: &Announce<'_>) {
    out.extend_from_slice(b"{\"action\":\"announce\",\"info_hash\":");
    write_binary(out, &a.info_hash.0);
    out.extend_from_slice(b",\"peer_id\":");
    write_binary(out, &a.peer_id.0);
    let event: &[u8] = match a.event {
        Event::None => b"",
        Event::Started => b",\"event\":\"started\"",
        Event::Completed => b",\"event\":\"completed\"",
        Event::Stopped => b",\"event\":\"stopped\"",
    };
    out.extend_from_slice(event);
    for (key, v) in [
        (&b",\"uploaded\":"[..], a.uploaded),
        (b",\"downloaded\":", a.downloaded),
        (b",\"left\":", a.left),
        (b",\"numwant\":", a.numwant),
    ] {
        if let Some(v) = v {
            write_number_member(out, key, v);
        }
    }
    if !a.offers.is_empty() {
        out.extend_from_slice(b",\"offers\":[");
        for (i, o) in a.offers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"offer\":");
            out.extend_from_slice(o.offer.as_bytes());
            out.extend_from_slice(b",\"offer_id\":");
            write_binary(out, &o.offer_id.0);
            out.push(b'}');
        }
        out.push(b']');
    }
    if let Some(ans) = &a.answer {
        out.extend_from_slice(b",\"to_peer_id\":");
        write_binary(out, &ans.to_peer_id.0);
        out.extend_from_slice(b",\"answer\":");
        out.extend_from_slice(ans.answer.as_bytes());
        out.extend_from_slice(b",\"offer_id\":");
        write_binary(out, &ans.offer_id.0);
    }
    out.push(b'}');
}

/// Appends a scrape request (a client's side).
pub fn write_scrape_request(out: &mut Vec<u8>, s: &Scrape<'_>) {
    out.extend_from_slice(b"{\"action\":\"scrape\"");
    if let Some(hashes) = &s.info_hashes {
        out.extend_from_slice(b",\"info_hash\":");
        if hashes.is_one() {
            for h in hashes.iter() {
                write_binary(out, &h.0);
            }
        } else {
            out.push(b'[');
            for (i, h) in hashes.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_binary(out, &h.0);
            }
            out.push(b']');
        }
    }
    out.push(b'}');
}

/// Writes bytes as a JSON string that `JSON.parse` turns back into one char per byte:
/// byte for byte what `JSON.stringify` writes for the client's binary strings: printable ASCII
/// and DEL as is (bar `"` and `\`), control bytes as `\b`, `\t`, `\n`, `\f`, `\r` or
/// `\u00xx`, bytes 0x80..0xFF as the UTF-8 of U+0080..U+00FF.
pub fn write_binary(out: &mut Vec<u8>, bytes: &[u8]) {
    // Each id of every message goes through here: 20 bytes at a time into a buffer on the
    // stack, appended at once. Table-driven because a branch per byte on its class mispredicts
    // on random ids; with the spelling of every byte computed at compile time, a byte costs one
    // load and one fixed 8-byte copy (the buffer has 8 bytes of slack for the last one).
    const IN: usize = 20;
    out.push(b'"');
    for chunk in bytes.chunks(IN) {
        let mut buf = [0u8; MAX_SPELLING * IN + 8];
        let mut n = 0;
        for &b in chunk {
            let spelling = SPELLINGS.get(usize::from(b)).copied().unwrap_or_default();
            if let Some(slot) = buf.get_mut(n..n + 8) {
                slot.copy_from_slice(&spelling);
            }
            n += usize::from(spelling[7]);
        }
        out.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    out.push(b'"');
}

fn write_number_member(out: &mut Vec<u8>, key: &[u8], v: u64) {
    out.extend_from_slice(key);
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Writes text as a JSON string: `"`, `\` and control characters escaped, the rest as is.
fn write_text(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for &b in text.as_bytes() {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0x00..=0x1F => write_u00(out, b),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn write_u00(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&u00(b));
}

/// `\u00xx` for a control byte.
const fn u00(b: u8) -> [u8; 6] {
    const fn hex(n: u8) -> u8 {
        if n < 10 {
            b'0' + n
        } else {
            b'a' + n - 10
        }
    }
    [b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xF)]
}

/// The most bytes one input byte is written as (`\u00xx`).
const MAX_SPELLING: usize = 6;

/// What [`write_binary`] writes for each byte: the spelling in the first bytes, its length in
/// the last.
const SPELLINGS: [[u8; 8]; 256] = spellings();

// Indexing here runs at compile time, where an index out of bounds fails the build.
#[allow(clippy::indexing_slicing)]
const fn spellings() -> [[u8; 8]; 256] {
    let mut table = [[0u8; 8]; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let (s, len): ([u8; MAX_SPELLING], u8) = match b {
            b'"' | b'\\' => ([b'\\', b, 0, 0, 0, 0], 2),
            0x08 => ([b'\\', b'b', 0, 0, 0, 0], 2),
            0x09 => ([b'\\', b't', 0, 0, 0, 0], 2),
            0x0A => ([b'\\', b'n', 0, 0, 0, 0], 2),
            0x0C => ([b'\\', b'f', 0, 0, 0, 0], 2),
            0x0D => ([b'\\', b'r', 0, 0, 0, 0], 2),
            0x00..=0x1F => (u00(b), 6),
            0x20..=0x7F => ([b, 0, 0, 0, 0, 0], 1),
            _ => ([0xC0 | (b >> 6), 0x80 | (b & 0x3F), 0, 0, 0, 0], 2),
        };
        let mut j = 0;
        while j < MAX_SPELLING {
            table[i][j] = s[j];
            j += 1;
        }
        table[i][7] = len;
        i += 1;
    }
    table
}
