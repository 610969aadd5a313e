//! The `digest` capability (WIT 0.2): SHA-256 computed by the host, natively
//! (`sha2`, with SHA-NI where the CPU has it), for sinks that would
//! otherwise run SHA-256 in wasm.
//!
//! Host code is not interrupted by the epoch deadline (only wasm code is),
//! so one call may hash at most [`MAX_DIGEST_INPUT`] bytes: a sink cannot
//! keep the host hashing for long in one call. Longer input gets an error
//! and nothing is hashed (and nothing was copied: the input is read where
//! it lies in the sink's memory). Many calls are no way around the sink's
//! deadline either: the deadline is checked in the wasm between them.
//!
//! The import is linked by hand (`add_to_linker`), not through the
//! generated `Host` trait: the generated one copies the input out of the
//! sink's memory into a new `Vec` first, and a sink calls this once per
//! record. Here the bytes are hashed where they are, in the sink's memory,
//! for the length of the call (issue 15).

use chainsink_format::{Hash, MAX_RECORD_BYTES};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, WasmList};

use crate::runtime::world::WitVersion;
use crate::store::SinkState;

/// Most bytes one `digest.sha256` call hashes: the largest record
/// ([`MAX_RECORD_BYTES`], 1 MiB), as `wit/audit.wit` promises.
pub const MAX_DIGEST_INPUT: usize = MAX_RECORD_BYTES;

/// SHA-256 of `data`, or why not (too long), as the `digest` import answers.
pub fn sha256(data: &[u8]) -> Result<[u8; 32], String> {
    if data.len() > MAX_DIGEST_INPUT {
        return Err(format!(
            "digest.sha256: {} bytes is more than the {MAX_DIGEST_INPUT} one call may hash \
             (the largest record); nothing was hashed: hash longer data in the sink",
            data.len()
        ));
    }
    Ok(Hash::of(data).0)
}

/// Adds `digest.sha256` of WIT 0.2 to `linker`: the WIT function
/// `sha256: func(data: list<u8>) -> result<list<u8>, string>`, hashing the
/// list in the sink's memory without copying it out (it keeps no state).
pub(crate) fn add_to_linker(linker: &mut Linker<SinkState>) -> wasmtime::Result<()> {
    linker
        .instance(&WitVersion::V0_2.interface_name("digest"))?
        .func_wrap(
            "sha256",
            |store: StoreContextMut<'_, SinkState>, (data,): (WasmList<u8>,)| {
                Ok((sha256(data.as_le_slice(&store)).map(|d| d.to_vec()),))
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hashes_as_sha256_does() {
        // FIPS 180-2 test vectors.
        assert_eq!(
            hex(&sha256(b"abc").unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(&[]).unwrap()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").unwrap()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        // The limit itself is allowed.
        assert_eq!(sha256(&vec![7; MAX_DIGEST_INPUT]).unwrap().len(), 32);
    }

    #[test]
    fn refuses_input_over_the_bound() {
        let err = sha256(&vec![0; MAX_DIGEST_INPUT + 1]).unwrap_err();
        assert!(err.contains(&format!("{}", MAX_DIGEST_INPUT + 1)), "{err}");
        assert!(err.contains("nothing was hashed"), "{err}");
    }
}
