//! ferrotracker's server crate as a library: what its binaries share. The tracker binary
//! (`main.rs`) and the benchmarks' do-nothing UDP responder (`bin/ferrotracker-null-udp.rs`)
//! both move datagrams with [`udp_batch::Batch`]; [`tls`] loads the certificate and key that
//! the tracker's TLS listeners present.

pub mod tls;
pub mod udp_batch;
