//! `/stats?mode=everything`: opentracker's XML summary of every counter.

use std::fmt::Write as _;

use super::{Snapshot, VERSION};

pub(super) fn everything(s: &Snapshot, out: &mut String) {
    let c = &s.counters;
    let t = &s.totals;
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stats>\n  <tracker_id>{}</tracker_id>\n  <version>\n{VERSION}\n  </version>\n  <uptime>{}</uptime>\n  <torrents>\n    <count_mutex>{}</count_mutex>\n    <count_iterator>{}</count_iterator>\n  </torrents>\n",
        s.tracker_id, s.uptime, t.torrents, t.torrents
    );
    let _ = write!(
        out,
        "  <peers>\n    <count>{}</count>\n  </peers>\n  <seeds>\n    <count>{}</count>\n  </seeds>\n  <completed>\n    <count>{}</count>\n  </completed>\n",
        t.peers(),
        t.seeders,
        c.completed
    );
    let _ = write!(
        out,
        "  <connections>\n    <tcp>\n      <accept>{}</accept>\n      <announce>{}</announce>\n      <scrape>{}</scrape>\n    </tcp>\n    <udp>\n      <overall>{}</overall>\n      <connect>{}</connect>\n      <announce>{}</announce>\n      <scrape>{}</scrape>\n      <missmatch>{}</missmatch>\n    </udp>\n    <livesync>\n      <count>{}</count>\n    </livesync>\n  </connections>\n",
        c.tcp_accepts,
        c.http_announces,
        c.http_scrapes,
        c.udp_packets,
        c.udp_connects,
        c.udp_announces,
        c.udp_scrapes,
        c.udp_bad_connection_id,
        c.sync.peers_received
    );
    out.push_str("  <debug>\n    <renew>\n");
    for (i, n) in c.renewed.iter().enumerate() {
        let _ = writeln!(out, "      <count interval=\"{i:02}\">{n}</count>");
    }
    out.push_str("    </renew>\n    <http_error>\n");
    let errors = [
        ("302 Redirect", c.http_redirects),
        ("400 Parse Error", c.http_400_parse),
        ("400 Invalid Parameter", c.http_400_param),
        ("400 Invalid Parameter (compact=0)", 0),
        ("400 Not Modest", 0),
        ("402 Payment Required", 0),
        ("403 Access Denied", c.http_403),
        ("404 Not found", c.http_404),
        ("500 Internal Server Error", c.http_500),
        (
            "429 Too Many Requests",
            c.http_rate_limited + c.full_scrapes_too_soon,
        ),
        (
            "503 Service Unavailable",
            c.conn_limited + c.conn_limited_ip + c.streams_refused,
        ),
    ];
    for (code, n) in errors {
        let _ = writeln!(out, "      <count code=\"{code}\">{n}</count>");
    }
    out.push_str(
        "    </http_error>\n    <mutex_stall>\n      <count>0</count>\n    </mutex_stall>\n  </debug>\n</stats>",
    );
}

#[cfg(test)]
mod tests {
    use crate::stats::tests::page;

    #[test]
    fn everything_xml() {
        let x = page("mode=everything");
        assert!(x.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stats>\n  <tracker_id>42</tracker_id>\n  <version>\nferrotracker "
        ));
        assert!(x.contains("\n  </version>\n  <uptime>7200</uptime>\n  <torrents>\n    <count_mutex>3</count_mutex>\n    <count_iterator>3</count_iterator>\n  </torrents>\n  <peers>\n    <count>12</count>\n  </peers>\n  <seeds>\n    <count>4</count>\n  </seeds>\n  <completed>\n    <count>14</count>\n  </completed>\n"));
        assert!(x.contains("    <tcp>\n      <accept>7200</accept>\n      <announce>3600</announce>\n      <scrape>10</scrape>\n    </tcp>\n    <udp>\n      <overall>36000</overall>\n      <connect>100</connect>\n      <announce>200</announce>\n      <scrape>20</scrape>\n      <missmatch>3</missmatch>\n    </udp>\n"));
        assert!(x.contains("      <count interval=\"00\">1</count>\n"));
        assert!(x.contains("      <count interval=\"03\">2</count>\n"));
        assert!(x.contains("      <count interval=\"44\">1</count>\n    </renew>\n"));
        assert!(x.contains("      <count code=\"302 Redirect\">1</count>\n      <count code=\"400 Parse Error\">2</count>\n      <count code=\"400 Invalid Parameter\">3</count>\n      <count code=\"400 Invalid Parameter (compact=0)\">0</count>\n      <count code=\"400 Not Modest\">0</count>\n      <count code=\"402 Payment Required\">0</count>\n      <count code=\"403 Access Denied\">4</count>\n      <count code=\"404 Not found\">6</count>\n      <count code=\"500 Internal Server Error\">7</count>\n      <count code=\"429 Too Many Requests\">0</count>\n      <count code=\"503 Service Unavailable\">0</count>\n    </http_error>\n"));
        assert!(x.ends_with(
            "    <mutex_stall>\n      <count>0</count>\n    </mutex_stall>\n  </debug>\n</stats>"
        ));
        assert_eq!(x.matches("<count interval=").count(), 45);
    }
}
