//! Decoders of the tracker's bencoded announce and scrape replies and of compact peer lists.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use ferrotracker_proto::bencode::{self, Value};

/// A decoded HTTP announce reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceReply {
    pub complete: i64,
    pub incomplete: i64,
    pub downloaded: Option<i64>,
    pub interval: i64,
    pub min_interval: i64,
    /// `None` if the key is absent.
    pub peers: Option<Vec<SocketAddrV4>>,
    pub peers6: Option<Vec<SocketAddrV6>>,
    /// The keys in reply order.
    pub keys: Vec<String>,
}

impl AnnounceReply {
    pub fn parse(body: &[u8]) -> AnnounceReply {
        let v = bencode::decode(body)
            .unwrap_or_else(|e| panic!("reply is not bencode ({e:?}): {:?}", lossy(body)));
        let dict = v
            .as_dict()
            .unwrap_or_else(|| panic!("reply is not a dict: {:?}", lossy(body)));
        assert!(
            v.get(b"failure reason").is_none(),
            "announce failed: {:?}",
            lossy(body)
        );
        let int = |k: &[u8]| {
            v.get(k)
                .and_then(Value::as_int)
                .unwrap_or_else(|| panic!("no int {:?} in {:?}", lossy(k), lossy(body)))
        };
        let peers = v.get(b"peers").map(|p| {
            let b = p
                .as_bytes()
                .unwrap_or_else(|| panic!("peers is not compact: {:?}", lossy(body)));
            compact4(b)
        });
        let peers6 = v.get(b"peers6").map(|p| {
            let b = p
                .as_bytes()
                .unwrap_or_else(|| panic!("peers6 is not a string: {:?}", lossy(body)));
            compact6(b)
        });
        AnnounceReply {
            complete: int(b"complete"),
            incomplete: int(b"incomplete"),
            downloaded: v.get(b"downloaded").and_then(Value::as_int),
            interval: int(b"interval"),
            min_interval: int(b"min interval"),
            peers,
            peers6,
            keys: dict.iter().map(|(k, _)| lossy(k)).collect(),
        }
    }

    pub fn peers4(&self) -> Vec<SocketAddrV4> {
        self.peers.clone().unwrap_or_default()
    }

    pub fn peers6(&self) -> Vec<SocketAddrV6> {
        self.peers6.clone().unwrap_or_default()
    }

    /// Ports of the IPv4 peers, sorted.
    pub fn ports4(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.peers4().iter().map(|p| p.port()).collect();
        v.sort_unstable();
        v
    }
}

/// 6-byte compact IPv4 peers.
pub fn compact4(b: &[u8]) -> Vec<SocketAddrV4> {
    assert_eq!(
        b.len() % 6,
        0,
        "compact peers length {} not a multiple of 6",
        b.len()
    );
    b.chunks_exact(6)
        .map(|c| {
            SocketAddrV4::new(
                Ipv4Addr::new(c[0], c[1], c[2], c[3]),
                u16::from_be_bytes([c[4], c[5]]),
            )
        })
        .collect()
}

/// 18-byte compact IPv6 peers.
pub fn compact6(b: &[u8]) -> Vec<SocketAddrV6> {
    assert_eq!(
        b.len() % 18,
        0,
        "compact peers6 length {} not a multiple of 18",
        b.len()
    );
    b.chunks_exact(18)
        .map(|c| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&c[..16]);
            SocketAddrV6::new(Ipv6Addr::from(a), u16::from_be_bytes([c[16], c[17]]), 0, 0)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrapeEntry {
    pub complete: i64,
    pub downloaded: i64,
    pub incomplete: i64,
}

/// `d5:filesd<hash>d8:complete..e..ee` in reply order.
pub fn parse_scrape(body: &[u8]) -> Vec<([u8; 20], ScrapeEntry)> {
    let v = bencode::decode(body)
        .unwrap_or_else(|e| panic!("scrape reply is not bencode ({e:?}): {:?}", lossy(body)));
    let files = v
        .get(b"files")
        .and_then(Value::as_dict)
        .unwrap_or_else(|| panic!("no files dict in {:?}", lossy(body)));
    files
        .iter()
        .map(|(k, e)| {
            let h: [u8; 20] = (*k)
                .try_into()
                .unwrap_or_else(|_| panic!("scrape key is not 20 bytes: {:?}", lossy(k)));
            let int = |key: &[u8]| {
                e.get(key)
                    .and_then(Value::as_int)
                    .unwrap_or_else(|| panic!("no {:?} in scrape {:?}", lossy(key), lossy(body)))
            };
            (
                h,
                ScrapeEntry {
                    complete: int(b"complete"),
                    downloaded: int(b"downloaded"),
                    incomplete: int(b"incomplete"),
                },
            )
        })
        .collect()
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
