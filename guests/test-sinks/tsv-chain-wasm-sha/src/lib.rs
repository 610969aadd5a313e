//! `tsv-chain` (see `guests/test-sinks/tsv-chain`), the same source, with
//! SHA-256 computed in wasm (`sha2`) instead of by the host's `digest`
//! import: the other side of the digest benchmark
//! (`crates/host/benches/digest.rs`), and a check that both give the same
//! bytes.

#[path = "../../tsv-chain/src/lib.rs"]
mod tsv_chain;
