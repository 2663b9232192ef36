//! ferrotracker's server crate as a library: what its binaries share. The tracker binary
//! (`main.rs`) and the benchmarks' do-nothing UDP responder (`bin/ferrotracker-null-udp.rs`)
//! both move datagrams with [`udp_batch::Batch`].

pub mod udp_batch;
