//! The RFC 6962 Merkle tree over a log's lines, and its proofs.
//!
//! - leaf hash: `SHA-256(0x00 || line)`, the line without its newline;
//! - node hash: `SHA-256(0x01 || left || right)`;
//! - the root of the empty tree: `SHA-256("")`.
//!
//! Proofs are generated from the leaf hashes as RFC 6962 section 2.1.1
//! (`PATH`) and 2.1.2 (`PROOF`/`SUBPROOF`) define them, and verified with the
//! algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf, a node or a root.
pub type Hash = [u8; 32];

/// Most hashes a proof may hold: a tree of 2^64 leaves needs at most 64
/// (consistency proofs at most 2 * 64; RFC 9162 bounds both by the size).
pub const MAX_PROOF_HASHES: usize = 128;

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf is not in a tree of that size.
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index asked for (zero-based).
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof between sizes that cannot have one.
    #[error(
        "no consistency proof from a tree of {old} leaves to one of {new}: the old tree must not be larger"
    )]
    SizesOutOfOrder {
        /// The old tree size.
        old: u64,
        /// The new tree size.
        new: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("the proof has {got} hashes, but a proof for these sizes has {expected}")]
    WrongLength {
        /// Hashes in the proof.
        got: usize,
        /// Hashes such a proof has.
        expected: usize,
    },
    /// The hashes do not lead to the root.
    #[error("the proof does not lead to the root: the data is not what the tree holds")]
    RootMismatch,
    /// The two roots of equal-sized trees differ, or a consistency proof
    /// leads to a different old root.
    #[error("the old tree is not a prefix of the new one (the proof leads to another old root)")]
    OldRootMismatch,
}

/// The leaf hash of one line (without its newline).
pub fn leaf_hash(line: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(line);
    h.finalize().into()
}

/// The hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The roots of the perfect subtrees that make up a tree (its *frontier*):
/// enough to append leaves and compute the root, in O(log n) space.
///
/// A tree of `size` leaves is the concatenation of one perfect subtree per
/// set bit of `size`, largest first; `hashes` holds their roots in that
/// order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    /// A frontier from stored parts; `None` when the number of hashes does
    /// not fit `size` (one per set bit).
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<CompactRange> {
        (size.count_ones() as usize == hashes.len()).then_some(CompactRange { size, hashes })
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, largest subtree first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The leaf ranges `[start, end)` the subtree roots cover, in order.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        let mut start = 0;
        let mut out = Vec::with_capacity(self.hashes.len());
        for bit in (0..64).rev() {
            let width = 1u64 << bit;
            if self.size & width != 0 {
                out.push((start, start + width));
                start += width;
            }
        }
        out
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.hashes.pop().expect("one hash per set bit");
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.hashes.push(hash);
        self.size += 1;
    }

    /// The root hash of the tree so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// The root of the tree over `leaves` (`MTH` of RFC 6962).
pub fn root(leaves: &[Hash]) -> Hash {
    let mut range = CompactRange::new();
    for leaf in leaves {
        range.push(*leaf);
    }
    range.root()
}

/// The largest power of two smaller than `n` (`n` > 1).
fn split(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The inclusion proof of leaf `index` in the tree over `leaves`
/// (RFC 6962 section 2.1.1, `PATH(m, D[n])`), leaf's sibling first.
pub fn inclusion_proof(index: u64, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    path(index as usize, leaves, &mut proof);
    Ok(proof)
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &d[..k], out);
        out.push(root(&d[k..]));
    } else {
        path(m - k, &d[k..], out);
        out.push(root(&d[..k]));
    }
}

/// The consistency proof from the tree over `leaves[..old]` to the tree over
/// all of `leaves` (RFC 6962 section 2.1.2, `PROOF(m, D[n])`). Empty when
/// `old` is 0 or the whole tree.
pub fn consistency_proof(old: u64, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let new = leaves.len() as u64;
    if old > new {
        return Err(ProofError::SizesOutOfOrder { old, new });
    }
    let mut proof = Vec::new();
    if old > 0 && old < new {
        subproof(old as usize, leaves, true, &mut proof);
    }
    Ok(proof)
}

fn subproof(m: usize, d: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !whole {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], whole, out);
        out.push(root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root(&d[..k]));
    }
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves with
/// root `root` (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected,
        });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && r == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// How many hashes the inclusion proof of leaf `index` in a tree of `size`
/// leaves has (`PATH`'s steps, counted without hashing).
fn inclusion_len(index: u64, size: u64) -> usize {
    let (mut m, mut n, mut len) = (index, size, 0);
    while n > 1 {
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        len += 1;
        if m < k {
            n = k;
        } else {
            m -= k;
            n -= k;
        }
    }
    len
}

/// Checks that the tree of `new` leaves with root `new_root` extends the
/// tree of `old` leaves with root `old_root` (RFC 9162 section 2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: 0,
            });
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::OldRootMismatch)
        };
    }
    if old == 0 {
        // The empty tree is a prefix of every tree.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength {
                got: proof.len(),
                expected: 0,
            })
        };
    }
    if proof.is_empty() || proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected: consistency_len(old, new),
        });
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: consistency_len(old, new),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected: consistency_len(old, new),
        });
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// How many hashes the consistency proof from `old` to `new` leaves has
/// (0 < old < new), for messages.
fn consistency_len(old: u64, new: u64) -> usize {
    // Count SUBPROOF's steps without hashing.
    let (mut m, mut n, mut whole, mut len) = (old, new, true, 0usize);
    while m != n {
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        len += 1;
        if m <= k {
            n = k;
        } else {
            m -= k;
            n -= k;
            whole = false;
        }
    }
    len + usize::from(!whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("line {i}").as_bytes()))
            .collect()
    }

    /// MTH straight from RFC 6962's recursive definition.
    fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split(n);
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn known_answers() {
        // RFC 6962's empty tree and the well-known leaf of the empty string.
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn the_frontier_gives_the_recursive_root_at_every_size() {
        let d = leaves(70);
        let mut range = CompactRange::new();
        assert_eq!(range.root(), mth(&[]));
        for (i, leaf) in d.iter().enumerate() {
            range.push(*leaf);
            assert_eq!(range.root(), mth(&d[..=i]), "size {}", i + 1);
            assert_eq!(range.hashes().len(), range.size().count_ones() as usize);
            let ranges = range.ranges();
            for ((start, end), h) in ranges.iter().zip(range.hashes()) {
                assert_eq!(*h, mth(&d[*start as usize..*end as usize]));
            }
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_changed_leaf_fails() {
        let d = leaves(40);
        for n in 1..=d.len() {
            let tree = &d[..n];
            let r = root(tree);
            for i in 0..n {
                let proof = inclusion_proof(i as u64, tree).unwrap();
                assert_eq!(proof.len(), inclusion_len(i as u64, n as u64), "{i} of {n}");
                verify_inclusion(&tree[i], i as u64, n as u64, &proof, &r)
                    .unwrap_or_else(|e| panic!("leaf {i} of {n}: {e}"));
                let other = leaf_hash(b"not this line");
                assert!(verify_inclusion(&other, i as u64, n as u64, &proof, &r).is_err());
                if n > 1 {
                    let wrong = (i + 1) % n;
                    assert!(
                        verify_inclusion(&tree[i], wrong as u64, n as u64, &proof, &r).is_err(),
                        "leaf {i} of {n} at index {wrong}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_rewrite_fails() {
        let d = leaves(40);
        for n in 1..=d.len() {
            let new_root = root(&d[..n]);
            for m in 0..=n {
                let old_root = root(&d[..m]);
                let proof = consistency_proof(m as u64, &d[..n]).unwrap();
                if m > 0 && m < n {
                    assert_eq!(proof.len(), consistency_len(m as u64, n as u64));
                }
                verify_consistency(m as u64, n as u64, &old_root, &new_root, &proof)
                    .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
                if m > 0 {
                    // The same new tree, but an old tree whose leaf differs.
                    let mut other = d[..m].to_vec();
                    other[m / 2] = leaf_hash(b"rewritten");
                    let other_root = root(&other);
                    assert!(
                        verify_consistency(m as u64, n as u64, &other_root, &new_root, &proof)
                            .is_err(),
                        "{m} -> {n}"
                    );
                    // A rewritten new tree with the honest old root.
                    let mut rewritten = d[..n].to_vec();
                    rewritten[m - 1] = leaf_hash(b"rewritten");
                    let rw_proof = consistency_proof(m as u64, &rewritten).unwrap();
                    assert!(
                        verify_consistency(
                            m as u64,
                            n as u64,
                            &old_root,
                            &root(&rewritten),
                            &rw_proof
                        )
                        .is_err(),
                        "{m} -> {n} rewritten"
                    );
                }
            }
        }
    }

    #[test]
    fn out_of_range_is_refused() {
        let d = leaves(3);
        assert!(matches!(
            inclusion_proof(3, &d),
            Err(ProofError::IndexOutOfRange { index: 3, size: 3 })
        ));
        assert!(consistency_proof(4, &d).is_err());
        let r = root(&d);
        assert!(verify_consistency(4, 3, &r, &r, &[]).is_err());
        assert!(verify_consistency(2, 3, &r, &r, &[]).is_err());
    }

    #[test]
    fn frontier_parts_must_fit_the_size() {
        let mut range = CompactRange::new();
        for leaf in leaves(5) {
            range.push(leaf);
        }
        let back = CompactRange::from_parts(5, range.hashes().to_vec()).unwrap();
        assert_eq!(back, range);
        assert!(CompactRange::from_parts(7, range.hashes().to_vec()).is_none());
    }
}
