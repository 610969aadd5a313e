//! Signed checkpoints over chainsink audit logs.
//!
//! A hash chain proves only that a log agrees with itself: whoever can
//! write the file can cut its tail, or rewrite it from any record with fresh
//! hashes. This crate adds what Certificate Transparency adds to a log:
//!
//! - [`merkle`]: an RFC 6962 Merkle tree over the log's lines (leaf =
//!   SHA-256(0x00 || line without its newline)), a [`merkle::CompactRange`]
//!   that grows one leaf at a time, and inclusion and consistency proofs,
//!   generated and verified as RFC 9162 section 2.1 says.
//! - [`note`]: C2SP signed notes with Ed25519 keys (`vkey` and private key
//!   text forms, key IDs, several signatures, unknown ones ignored) and the
//!   Ed25519 cosignatures of C2SP tlog-cosignature.
//! - [`checkpoint`]: the C2SP tlog-checkpoint body (origin, size, root).
//! - [`proof`]: the C2SP tlog-proof text of an inclusion proof, and
//!   chainsink's consistency-proof text (the tlog-witness request body).
//! - [`witness`]: the client side of C2SP tlog-witness.
//! - [`checkpointer`]: the host's signer: reads a log from where its last
//!   checkpoint ended, hashes the new lines, signs, and writes `LOG.checkpoint`
//!   and `LOG.tree` beside it atomically; and [`checkpointer::check_log`],
//!   which checks a log against a signed checkpoint.
//!
//! The crate has no CLI in it and never sees a sink: the host holds the key.

pub mod checkpoint;
pub mod checkpointer;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod witness;
