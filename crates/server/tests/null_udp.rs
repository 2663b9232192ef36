//! The benchmarks' do-nothing responder (`ferrotracker-null-udp`, the floor `bench/udp.sh`
//! measures) answers BEP 15 over a real socket, or its figures would mean nothing.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn null_responder_answers_connect_announce_and_scrape() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrotracker-null-udp"))
        .arg("127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferrotracker-null-udp");
    let mut line = String::new();
    BufReader::new(child.stderr.take().expect("stderr"))
        .read_line(&mut line)
        .expect("read its address");
    let addr = line
        .trim()
        .strip_prefix("listening on udp ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 2048];
    let mut ask = |req: &[u8]| {
        sock.send_to(req, &addr).unwrap();
        let n = sock.recv(&mut buf).expect("a reply");
        buf[..n].to_vec()
    };

    let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&0u32.to_be_bytes());
    connect.extend_from_slice(&7u32.to_be_bytes());
    let r = ask(&connect);
    assert_eq!(r.len(), 16);
    assert_eq!(&r[..8], &[0, 0, 0, 0, 0, 0, 0, 7]);
    let id = &r[8..16];

    let mut announce = id.to_vec();
    announce.extend_from_slice(&1u32.to_be_bytes());
    announce.extend_from_slice(&8u32.to_be_bytes());
    announce.extend_from_slice(&[0xab; 20]); // info_hash
    announce.extend_from_slice(&[0xcd; 20]); // peer_id
    announce.extend_from_slice(&[0; 24]); // downloaded, left, uploaded
    announce.extend_from_slice(&[0; 16]); // event, ip, key
    announce.extend_from_slice(&(-1i32).to_be_bytes()); // num_want
    announce.extend_from_slice(&6881u16.to_be_bytes());
    let r = ask(&announce);
    assert_eq!(r.len(), 20, "an announce reply with no peers");
    assert_eq!(&r[..8], &[0, 0, 0, 1, 0, 0, 0, 8]);

    let mut scrape = id.to_vec();
    scrape.extend_from_slice(&2u32.to_be_bytes());
    scrape.extend_from_slice(&9u32.to_be_bytes());
    scrape.extend_from_slice(&[1; 40]); // two hashes
    let r = ask(&scrape);
    assert_eq!(r.len(), 8 + 2 * 12, "a scrape reply of two zero entries");
    assert_eq!(&r[..8], &[0, 0, 0, 2, 0, 0, 0, 9]);
    assert!(r[8..].iter().all(|&b| b == 0));

    child.kill().expect("stop it by its PID");
    child.wait().unwrap();
}
