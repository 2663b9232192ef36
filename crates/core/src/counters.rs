//! Per-worker event counters. Each worker owns its own (no shared cache line is written per
//! request); stats add them up.

/// What a worker has seen. Plain integers: only the owning worker writes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub tcp_accepts: u64,
    pub http_announces: u64,
    pub http_scrapes: u64,
    pub http_redirects: u64,
    pub http_400: u64,
    pub http_404: u64,
    pub http_500: u64,
    pub udp_packets: u64,
    pub udp_connects: u64,
    pub udp_announces: u64,
    pub udp_scrapes: u64,
    pub udp_bad_connection_id: u64,
    pub udp_bad_packets: u64,
    pub completed: u64,
}

impl Counters {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Counters) {
        self.tcp_accepts += o.tcp_accepts;
        self.http_announces += o.http_announces;
        self.http_scrapes += o.http_scrapes;
        self.http_redirects += o.http_redirects;
        self.http_400 += o.http_400;
        self.http_404 += o.http_404;
        self.http_500 += o.http_500;
        self.udp_packets += o.udp_packets;
        self.udp_connects += o.udp_connects;
        self.udp_announces += o.udp_announces;
        self.udp_scrapes += o.udp_scrapes;
        self.udp_bad_connection_id += o.udp_bad_connection_id;
        self.udp_bad_packets += o.udp_bad_packets;
        self.completed += o.completed;
    }
}
