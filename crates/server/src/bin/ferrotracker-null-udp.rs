//! A do-nothing BEP 15 responder, for the benchmarks only: the floor under any UDP tracker.
//!
//! It receives and sends with ferrotracker's own `recvmmsg`/`sendmmsg` batches and parses every
//! request with ferrotracker's parser, but stores nothing and checks nothing: a connect gets a
//! fixed connection id, an announce a 20-byte reply with no peers, a scrape zeros. What
//! `bench/udp.sh --trackers null` measures with it is the kernel's cost per datagram on the
//! machine, to which every real tracker adds its own work.
//!
//! usage: ferrotracker-null-udp ADDRESS   (e.g. 127.0.0.1:0; prints "listening on udp ADDR")

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use ferrotracker::udp_batch::Batch;
use ferrotracker_proto::udp;
use mio::{Events, Interest, Poll, Token};

fn main() -> std::io::Result<()> {
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let addr: SocketAddr = match arg.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ferrotracker-null-udp: bad address {arg:?}: {e}");
            std::process::exit(2);
        }
    };
    let mut sock = mio::net::UdpSocket::bind(addr)?;
    eprintln!("listening on udp {}", sock.local_addr()?);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut sock, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(8);
    let mut batch = Batch::new();
    let mut replies = Batch::reply_buffers();
    let fd = sock.as_raw_fd();
    loop {
        let n = batch.recv(fd)?;
        if n == 0 {
            poll.poll(&mut events, Some(Duration::from_secs(1)))?;
            continue;
        }
        for (i, out) in replies.iter_mut().enumerate().take(n) {
            out.clear();
            match udp::parse_request(batch.payload(i)) {
                Ok(udp::Request::Connect { transaction_id }) => {
                    udp::write_connect(out, transaction_id, 0x5eed_5eed_5eed_5eed)
                }
                Ok(udp::Request::Announce(r)) => {
                    udp::write_announce_header(out, r.transaction_id, 1800, 0, 0)
                }
                Ok(udp::Request::Scrape(s)) => {
                    udp::write_scrape_header(out, s.transaction_id);
                    for _ in s.info_hashes() {
                        udp::write_scrape_entry(out, 0, 0, 0);
                    }
                }
                Err(_) => {}
            }
        }
        batch.send(fd, &replies, n);
    }
}
