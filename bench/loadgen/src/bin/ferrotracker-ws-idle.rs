//! ferrotracker-ws-idle: opens N WebSocket connections to a WebTorrent tracker, sends one
//! announce on each (a distinct peer, no offers, `numwant` 0) and waits for its reply, then holds
//! every connection open and idle, so that the tracker's memory per connected peer can be read.
//!
//! usage: ferrotracker-ws-idle URL N [TORRENTS] [SOURCES] [HOLD_SECS]
//!   URL: ws://HOST:PORT/PATH (plain WebSocket; TLS is not spoken)
//!   TORRENTS: how many info hashes the peers spread over (default 1000)
//!   SOURCES: source addresses 127.0.0.1, 127.0.0.2, ... used in turn (default 1; a loopback
//!     address pair has ~28,000 ephemeral ports, so 100,000 connections need 4 or more)
//!   HOLD_SECS: how long to hold them (default 600); SIGTERM ends it earlier.
//! Prints "connected N" once every announce has been answered, then holds. Exits 1 with the
//! reason on the first connection or announce that fails.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tungstenite::{client, Message, WebSocket};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} URL N [TORRENTS] [SOURCES] [HOLD_SECS]", args[0]);
        std::process::exit(2);
    }
    let url = &args[1];
    let n: u32 = arg(&args, 2, 0);
    let torrents: u32 = arg(&args, 3, 1000).max(1);
    let sources: u8 = arg(&args, 4, 1).clamp(1, 254);
    let hold: u64 = arg(&args, 5, 600);
    let hostport = url
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| fail("URL must be ws://HOST:PORT/PATH"));
    let target: SocketAddr = hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| fail("cannot resolve the URL's host"));

    let mut held: Vec<WebSocket<TcpStream>> = Vec::with_capacity(n as usize);
    for i in 0..n {
        let src = Ipv4Addr::new(127, 0, 0, 1 + (i % u32::from(sources)) as u8);
        let stream = connect_from(src, target)
            .unwrap_or_else(|e| fail(&format!("connection {i}: connect from {src}: {e}")));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap_or_else(|e| fail(&format!("set_read_timeout: {e}")));
        let (mut ws, _) = client(url.as_str(), stream)
            .unwrap_or_else(|e| fail(&format!("connection {i}: handshake: {e}")));
        // info_hash and peer_id are 20-character strings; ASCII keeps them the same bytes
        // whichever way a tracker maps JSON strings to bytes.
        let announce = format!(
            r#"{{"action":"announce","info_hash":"ftidle{:014}","peer_id":"-FT0001-{:012}","numwant":0,"uploaded":0,"downloaded":0,"left":0,"event":"started","offers":[]}}"#,
            i % torrents,
            i
        );
        ws.send(Message::text(announce))
            .unwrap_or_else(|e| fail(&format!("connection {i}: send: {e}")));
        loop {
            match ws.read() {
                Ok(Message::Text(t)) if t.contains("\"interval\"") => break,
                Ok(Message::Text(t)) if t.contains("failure reason") => fail(&format!(
                    "connection {i}: tracker refused the announce: {t}"
                )),
                Ok(_) => {}
                Err(e) => fail(&format!("connection {i}: no announce reply: {e}")),
            }
        }
        held.push(ws);
    }
    println!("connected {}", held.len());
    // Hold without reading: the tracker sends nothing to a peer that made no offers, and pings
    // (if any) wait in the socket buffer.
    std::thread::sleep(Duration::from_secs(hold));
    drop(held);
}

fn connect_from(src: Ipv4Addr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    if src != Ipv4Addr::LOCALHOST {
        socket.bind(&SocketAddr::from((src, 0)).into())?;
    }
    match socket.connect(&target.into()) {
        Err(e) if e.kind() == ErrorKind::AddrNotAvailable => Err(std::io::Error::new(
            e.kind(),
            format!("{e} (out of ephemeral ports: use more SOURCES)"),
        )),
        r => r.map(|()| socket.into()),
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).map_or(default, |s| {
        s.parse()
            .unwrap_or_else(|_| fail(&format!("bad argument {s}")))
    })
}

fn fail(msg: &str) -> ! {
    eprintln!("ferrotracker-ws-idle: {msg}");
    std::process::exit(1)
}
