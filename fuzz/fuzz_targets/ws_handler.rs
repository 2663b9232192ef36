//! WebTorrent messages through `Tracker::handle_ws` on four connections of one tracker (made
//! afresh for each input), with every relay delivered to its connection through
//! `Tracker::ws_relayed`, so that answers meet the offers they answer.
//!
//! An input is a sequence of steps, each:
//!
//! ```text
//! op u8 | [len u16 | payload]
//! op: bits 0-1  connection 0..=3
//!     bits 2-3  0, 1 = the payload is a message from it, 2 = the connection closes (and a new
//!               one takes its place), 3 = advance the clock by the next byte, in seconds
//! ```
//!
//! Invariants: every reply parses as a tracker message (a failure reason always carries its
//! action); only an answer gets no reply; each relay is an offer or answer for an open
//! connection other than the sender, at most `webtorrent.max_offers` of them to distinct
//! connections, answers one at a time; a connection's swarms stay within its bound; after
//! every connection closed, no WebTorrent peer is left in the store.
#![no_main]

use std::sync::Arc;

use ferrotracker_core::access::Access;
use ferrotracker_core::config::Config;
use ferrotracker_core::{Relays, Tracker, WsConn};
use ferrotracker_proto::webtorrent::{self, Limits, Reply, Request};
use libfuzzer_sys::fuzz_target;

const START: u32 = 1_700_000_000;
const CONNS: usize = 4;

fuzz_target!(|data: &[u8]| {
    let mut cfg = Config::default();
    cfg.webtorrent.max_offers = 3;
    cfg.webtorrent.max_peers_per_connection = 2;
    cfg.webtorrent.max_message = 4096;
    let t = Tracker::new(&cfg, Arc::new(Access::open()), START, [9; 16]);
    let mut w = t.worker(1);
    let mut next_key = CONNS as u64;
    let mut conns: Vec<WsConn> = (0..CONNS as u64).map(|k| t.ws_conn(k)).collect();
    let mut now = START;
    let mut out = Vec::new();
    let mut relays = Relays::new();
    let read_limits = Limits {
        max_message: usize::MAX,
        ..Limits::default()
    };

    let mut input = data;
    while let Some((&op, rest)) = input.split_first() {
        input = rest;
        let i = usize::from(op & 3);
        match (op >> 2) & 3 {
            2 => {
                t.ws_closed(&conns[i]);
                conns[i] = t.ws_conn(next_key);
                next_key += 1;
                continue;
            }
            3 => {
                if let Some((&s, rest)) = input.split_first() {
                    now += u32::from(s);
                    input = rest;
                }
                continue;
            }
            _ => {}
        }
        let len = match input {
            [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
            _ => input.len(),
        };
        input = input.get(2..).unwrap_or_default();
        let (msg, rest) = input.split_at(len.min(input.len()));
        input = rest;

        // The server hands over text frames only, which the WebSocket layer checked as UTF-8
        // (a frame that is not closes the connection there).
        let Ok(msg) = std::str::from_utf8(msg) else {
            continue;
        };
        let sender = conns[i].conn();
        t.handle_ws(&mut w, &mut conns[i], msg, now, &mut out, &mut relays);
        assert!(conns[i].swarms().len() <= 2);
        let is_answer = matches!(
            webtorrent::parse_request_text(msg, &Limits { max_message: 4096, max_offers: 3, ..Limits::default() }),
            Ok(Request::Announce(a)) if a.answer.is_some()
        );
        if out.is_empty() {
            assert!(is_answer, "no reply to {:?}", msg);
        } else {
            match webtorrent::parse_reply(&out, &read_limits) {
                Ok(Reply::Failure { action, .. }) => assert!(action.is_some()),
                Ok(Reply::Announce { .. } | Reply::Scrape(_)) => assert!(!is_answer),
                other => panic!("bad reply {other:?}"),
            }
        }
        assert!(relays.len() <= 3);
        let mut targets: Vec<u64> = relays.iter().map(|(r, _)| r.to).collect();
        targets.sort_unstable();
        targets.dedup();
        assert_eq!(targets.len(), relays.len(), "distinct targets");
        for (relay, bytes) in relays.iter() {
            assert_ne!(relay.to, sender);
            match webtorrent::parse_reply(bytes, &read_limits) {
                Ok(Reply::Offer { .. }) => assert!(relay.offer.is_some() && !is_answer),
                Ok(Reply::Answer { .. }) => {
                    assert!(relay.offer.is_none() && is_answer && relays.len() == 1)
                }
                other => panic!("bad relay {other:?}"),
            }
            let target = conns
                .iter_mut()
                .find(|c| c.conn() == relay.to)
                .expect("relays go to open connections");
            assert_eq!(t.ws_relayed(target, relay, bytes, now), Some(bytes));
        }
    }
    for c in &conns {
        t.ws_closed(c);
    }
    assert_eq!(t.store.totals().peers_ws, 0);
});
