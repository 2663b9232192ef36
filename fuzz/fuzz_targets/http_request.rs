//! HTTP request framing (`http::parse_request`), routing, and the query parser of whatever route
//! the request takes (announce, scrape, stats).
//!
//! Beyond "no panic": a complete head lies inside the input and the 8 KiB window, its path,
//! query and client-header lines borrow from it, the head alone parses to the same request, and
//! any shorter prefix of it is `Incomplete` (a request that arrives in pieces must not be refused
//! on the way). Which client header is kept (`ProxyHeader`) changes nothing else, and the nodes
//! read from each header's lines are canonical addresses, at most one for a single-address one.
#![no_main]

use ferrotracker_core::stats;
use ferrotracker_proto::forwarded::{Node, ProxyHeader, MAX_FORWARDED_LINES};
use ferrotracker_proto::http::{self, Parsed, Route, MAX_REQUEST_BYTES};
use ferrotracker_proto::query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let xff = ProxyHeader::XForwardedFor;
    let req = match http::parse_request(data, xff) {
        Ok(Parsed::Complete(req)) => req,
        Ok(Parsed::Incomplete) => {
            assert!(data.len() < MAX_REQUEST_BYTES, "Incomplete past the window");
            return;
        }
        Err(e) => {
            assert!(matches!(e.status(), 400 | 500));
            return;
        }
    };
    assert!(req.head_len <= data.len() && req.head_len <= MAX_REQUEST_BYTES);
    assert!(req.body_len <= MAX_REQUEST_BYTES);
    let head = &data[..req.head_len];
    assert!(within(head, req.path));
    if let Some(q) = req.query {
        assert!(within(head, q));
    }
    for header in ProxyHeader::ALL {
        let Ok(Parsed::Complete(other)) = http::parse_request(data, header) else {
            panic!("framing depends on the client header kept");
        };
        let c = other.client_header;
        assert_eq!(c.header(), header);
        assert_eq!(
            http::Request {
                client_header: req.client_header,
                ..other
            },
            req
        );
        assert!(c.lines().len() <= MAX_FORWARDED_LINES.min(c.line_count()));
        for x in c.lines() {
            assert!(within(head, x));
        }
        let mut n = 0;
        for node in c.nodes() {
            n += 1;
            if let Node::Ip(ip) = node {
                assert_eq!(ip, ip.to_canonical());
            }
        }
        if !header.is_list() {
            assert_eq!(n, usize::from(!c.is_empty()));
        }
    }

    // Framing depends on the head only, and every strict prefix of it asks for more bytes.
    assert_eq!(http::parse_request(head, xff), Ok(Parsed::Complete(req)));
    for cut in [
        req.head_len - 1,
        req.head_len / 2,
        req.head_len.saturating_sub(2),
    ] {
        assert_eq!(
            http::parse_request(&head[..cut], xff),
            Ok(Parsed::Incomplete),
            "prefix of {cut} bytes of a complete {}-byte head",
            req.head_len
        );
    }

    let q = req.query.unwrap_or_default();
    match http::route(&req, b"stats") {
        Route::Announce => {
            let _ = query::parse_announce(q);
        }
        Route::Scrape => {
            let _ = query::parse_scrape(q);
        }
        Route::Stats => {
            if let Err(e) = stats::parse_query(q) {
                assert!(!e.reason().is_empty());
            }
        }
        Route::FullScrape => assert!(req.query.is_none()),
        Route::Root => assert!(req.path.is_empty()),
        Route::Metrics => assert_eq!(req.path, http::METRICS_PATH),
        Route::Dashboard => assert_eq!(req.path, http::DASHBOARD_PATH),
        Route::DashboardJson => assert_eq!(req.path, http::DASHBOARD_JSON_PATH),
        Route::NotFound => {}
    }
});

/// Whether `part` is a sub-slice of `whole` (same memory, not just equal bytes).
fn within(whole: &[u8], part: &[u8]) -> bool {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    part.is_empty() || (p >= w && p + part.len() <= w + whole.len())
}
