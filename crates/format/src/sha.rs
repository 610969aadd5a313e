//! SHA-256 of the bytes a record's `hash` covers, two messages at a time where the CPU allows it.
//!
//! A verifier hashes every line it reads. With the x86 SHA extensions (SHA-NI) one SHA-256 stream
//! is bound by the latency of `sha256rnds2`, not by its throughput: the CPU can run the rounds of a
//! second, independent message in the gaps. `digest_pair` hashes two lines' messages in lock
//! step, one block of each per step, which on the machines we measured hashes two lines in about
//! 0.7 of the time of hashing them one after the other (docs/benchmarks.md, "Verify").
//!
//! A message is given as two slices (the line before and after its `"hash": "<64 hex>", `
//! member), so nothing is copied but the blocks that straddle the cut and the padding. The CPU is
//! checked at run time (`cpufeatures`); without SHA-NI, and on other targets, both functions use
//! the `sha2` crate, whose result they match bit for bit (tests below compare them on every length
//! over several blocks and every cut).

use sha2::Digest;

use crate::Hash;

/// A message in two parts: the bytes hashed are `parts[0]` followed by `parts[1]`.
pub(crate) type Parts<'a> = [&'a [u8]; 2];

/// SHA-256 of one message.
pub(crate) fn digest(m: Parts<'_>) -> Hash {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if shani::get() {
        // SAFETY: the CPU has the SHA extensions and SSE4.1 (checked just above).
        return unsafe { x86::digest1(m) };
    }
    portable(m)
}

/// SHA-256 of two messages, interleaved where the CPU has the SHA extensions.
pub(crate) fn digest_pair(a: Parts<'_>, b: Parts<'_>) -> (Hash, Hash) {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if shani::get() {
        // SAFETY: the CPU has the SHA extensions and SSE4.1 (checked just above).
        return unsafe { x86::digest2(a, b) };
    }
    (portable(a), portable(b))
}

/// Whether `digest_pair` interleaves two messages on this CPU (for benchmarks and reports).
pub fn interleaved() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if shani::get() {
        return true;
    }
    false
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
cpufeatures::new!(shani, "sha", "sse2", "ssse3", "sse4.1");

/// The `sha2` crate, one message.
fn portable(m: Parts<'_>) -> Hash {
    let mut d = sha2::Sha256::new();
    d.update(m[0]);
    d.update(m[1]);
    Hash(d.finalize().into())
}

/// The blocks of a padded message, produced one at a time without copying whole blocks.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
struct Blocks<'a> {
    parts: Parts<'a>,
    /// Message length in bytes.
    len: usize,
    /// Next block.
    k: usize,
    /// Number of blocks, padding included.
    n: usize,
    /// A block assembled from pieces (one straddling the parts, or the padding).
    tmp: [u8; 64],
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl<'a> Blocks<'a> {
    fn new(parts: Parts<'a>) -> Self {
        let len = parts[0].len() + parts[1].len();
        Blocks {
            parts,
            len,
            k: 0,
            // The message, the 0x80 byte and the 8-byte bit length, in 64-byte blocks.
            n: (len + 9).div_ceil(64),
            tmp: [0; 64],
        }
    }

    fn remaining(&self) -> usize {
        self.n - self.k
    }

    /// The next block (call only while [`Blocks::remaining`] is not 0).
    #[inline]
    fn next(&mut self) -> &[u8; 64] {
        let start = self.k * 64;
        self.k += 1;
        let p0 = self.parts[0];
        if let Some(b) = p0.get(start..start + 64) {
            return b.try_into().unwrap_or(&[0; 64]);
        }
        let p1 = self.parts[1];
        if start >= p0.len()
            && let Some(b) = p1.get(start - p0.len()..start - p0.len() + 64)
        {
            return b.try_into().unwrap_or(&[0; 64]);
        }
        self.assemble(start);
        &self.tmp
    }

    /// Copies block `start..start + 64` of the padded message into `tmp`.
    #[cold]
    fn assemble(&mut self, start: usize) {
        let end = (start + 64).min(self.len);
        let mut base = 0;
        for part in self.parts {
            let (s, e) = (start.max(base), end.min(base + part.len()));
            if s < e {
                self.tmp[s - start..e - start].copy_from_slice(&part[s - base..e - base]);
            }
            base += part.len();
        }
        let filled = end.saturating_sub(start);
        self.tmp[filled..].fill(0);
        if start <= self.len && self.len < start + 64 {
            self.tmp[self.len - start] = 0x80;
        }
        if self.k == self.n {
            let bits = (self.len as u64).wrapping_mul(8);
            self.tmp[56..].copy_from_slice(&bits.to_be_bytes());
        }
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod x86 {
    #[cfg(target_arch = "x86")]
    use core::arch::x86::*;
    #[cfg(target_arch = "x86_64")]
    use core::arch::x86_64::*;

    use super::{Blocks, Parts};
    use crate::Hash;

    /// The SHA-256 round constants, four to a vector.
    #[repr(align(16))]
    struct K([u32; 64]);
    static K32: K = K([
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ]);

    /// The initial hash value, in the (ABEF, CDGH) register layout `sha256rnds2` works on.
    #[inline]
    #[target_feature(enable = "sse2,ssse3,sse4.1")]
    fn initial() -> [__m128i; 2] {
        // A..H = 6a09e667 bb67ae85 3c6ef372 a54ff53a 510e527f 9b05688c 1f83d9ab 5be0cd19.
        let abef = _mm_set_epi32(
            0x6a09e667,
            0xbb67ae85_u32 as i32,
            0x510e527f,
            0x9b05688c_u32 as i32,
        );
        let cdgh = _mm_set_epi32(0x3c6ef372, 0xa54ff53a_u32 as i32, 0x1f83d9ab, 0x5be0cd19);
        [abef, cdgh]
    }

    /// The digest bytes of a final (ABEF, CDGH) state.
    #[inline]
    #[target_feature(enable = "sse2,ssse3,sse4.1")]
    fn finish([abef, cdgh]: [__m128i; 2]) -> Hash {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgfe = _mm_alignr_epi8(dchg, feba, 8);
        // Words A..H, each big-endian.
        let swap = _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203);
        let mut out = [0u8; 32];
        // SAFETY: `out` has room for two unaligned 16-byte stores.
        unsafe {
            _mm_storeu_si128(out.as_mut_ptr().cast(), _mm_shuffle_epi8(dcba, swap));
            _mm_storeu_si128(
                out.as_mut_ptr().add(16).cast(),
                _mm_shuffle_epi8(hgfe, swap),
            );
        }
        Hash(out)
    }

    /// The block's sixteen message words, four to a vector, as big-endian integers.
    #[inline]
    #[target_feature(enable = "sse2,ssse3")]
    fn load(block: &[u8; 64]) -> [__m128i; 4] {
        let mask = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203);
        let p: *const __m128i = block.as_ptr().cast();
        // SAFETY: four unaligned 16-byte loads inside the 64-byte block.
        core::array::from_fn(|i| unsafe { _mm_shuffle_epi8(_mm_loadu_si128(p.add(i)), mask) })
    }

    /// Round constants `4r..4r + 4`.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn k(r: usize) -> __m128i {
        // SAFETY: r < 16, so the 16-byte load stays inside the aligned table.
        unsafe { _mm_load_si128(K32.0.as_ptr().add(4 * r).cast()) }
    }

    /// Next four message words from the previous sixteen (`w[i]` is the oldest four).
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3")]
    fn schedule(w: &mut [__m128i; 4], i: usize) {
        let t1 = _mm_sha256msg1_epu32(w[i], w[(i + 1) % 4]);
        let t2 = _mm_alignr_epi8(w[(i + 3) % 4], w[(i + 2) % 4], 4);
        w[i] = _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), w[(i + 3) % 4]);
    }

    /// One block into one state.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn compress1(s: &mut [__m128i; 2], block: &[u8; 64]) {
        let [mut abef, mut cdgh] = *s;
        let mut w = load(block);
        for r in 0..16 {
            if r >= 4 {
                schedule(&mut w, r % 4);
            }
            let t = _mm_add_epi32(w[r % 4], k(r));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, t);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(t, 0x0E));
        }
        *s = [_mm_add_epi32(abef, s[0]), _mm_add_epi32(cdgh, s[1])];
    }

    /// One block of each of two independent messages, their rounds interleaved.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn compress2(s: &mut [__m128i; 2], x: &[u8; 64], s2: &mut [__m128i; 2], y: &[u8; 64]) {
        let [mut abef, mut cdgh] = *s;
        let [mut abef2, mut cdgh2] = *s2;
        let mut w = load(x);
        let mut w2 = load(y);
        for r in 0..16 {
            if r >= 4 {
                schedule(&mut w, r % 4);
                schedule(&mut w2, r % 4);
            }
            let kr = k(r);
            let t = _mm_add_epi32(w[r % 4], kr);
            let t2 = _mm_add_epi32(w2[r % 4], kr);
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, t);
            cdgh2 = _mm_sha256rnds2_epu32(cdgh2, abef2, t2);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(t, 0x0E));
            abef2 = _mm_sha256rnds2_epu32(abef2, cdgh2, _mm_shuffle_epi32(t2, 0x0E));
        }
        *s = [_mm_add_epi32(abef, s[0]), _mm_add_epi32(cdgh, s[1])];
        *s2 = [_mm_add_epi32(abef2, s2[0]), _mm_add_epi32(cdgh2, s2[1])];
    }

    /// SHA-256 of one message.
    ///
    /// # Safety
    /// The CPU must have the SHA extensions and SSE4.1.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn digest1(m: Parts<'_>) -> Hash {
        let mut s = initial();
        let mut b = Blocks::new(m);
        while b.remaining() > 0 {
            compress1(&mut s, b.next());
        }
        finish(s)
    }

    /// SHA-256 of two messages, a block of each at a time.
    ///
    /// # Safety
    /// The CPU must have the SHA extensions and SSE4.1.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn digest2(a: Parts<'_>, b: Parts<'_>) -> (Hash, Hash) {
        let (mut s, mut s2) = (initial(), initial());
        let (mut x, mut y) = (Blocks::new(a), Blocks::new(b));
        while x.remaining() > 0 && y.remaining() > 0 {
            compress2(&mut s, x.next(), &mut s2, y.next());
        }
        while x.remaining() > 0 {
            compress1(&mut s, x.next());
        }
        while y.remaining() > 0 {
            compress1(&mut s2, y.next());
        }
        (finish(s), finish(s2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(m: Parts<'_>) -> Hash {
        portable(m)
    }

    #[test]
    fn known_answers() {
        assert_eq!(
            digest([b"abc", b""]).to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            digest([b"", b""]).to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn every_length_and_cut_matches_sha2() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 131 + 7) as u8).collect();
        for len in 0..300 {
            let m = &data[..len];
            let cuts = [0, 1, len / 3, len / 2, len.saturating_sub(1), len]
                .into_iter()
                .chain((0..=len).step_by(13));
            for cut in cuts {
                let cut = cut.min(len);
                let parts = [&m[..cut], &m[cut..]];
                let want = Hash::of(m);
                assert_eq!(reference(parts), want);
                assert_eq!(digest(parts), want, "len {len} cut {cut}");
                // Paired with a message of another length, on either side.
                let other = &data[len / 2..len / 2 + (len * 7) % 200];
                let (x, y) = digest_pair(parts, [other, b""]);
                assert_eq!((x, y), (want, Hash::of(other)), "len {len} cut {cut}");
                let (y, x) = digest_pair([b"", other], parts);
                assert_eq!((x, y), (want, Hash::of(other)), "len {len} cut {cut}");
            }
        }
    }
}
