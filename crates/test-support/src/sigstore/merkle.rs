//! An in-memory RFC 6962 Merkle tree: leaf hash `SHA-256(0x00 || leaf)`,
//! node hash `SHA-256(0x01 || left || right)`, the empty tree hashes to
//! `SHA-256("")`.

use sha2::{Digest as _, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH(D[n]) over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]): the audit path for leaf `m` in the tree of `leaves`,
/// leaf-side sibling first (RFC 6962 §2.1.1).
pub fn inclusion_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    assert!(m < n, "leaf {m} outside a tree of size {n}");
    if n == 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut p = inclusion_proof(m, &leaves[..k]);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = inclusion_proof(m - k, &leaves[k..]);
        p.push(root(&leaves[..k]));
        p
    }
}

/// An append-only tree of leaf hashes.
#[derive(Default)]
pub struct Tree {
    leaves: Vec<Hash>,
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a leaf (its data, not its hash); returns its index.
    pub fn append(&mut self, data: &[u8]) -> usize {
        self.leaves.push(leaf_hash(data));
        self.leaves.len() - 1
    }

    pub fn size(&self) -> usize {
        self.leaves.len()
    }

    pub fn root(&self) -> Hash {
        root(&self.leaves)
    }

    /// The root of the first `size` leaves.
    pub fn root_at(&self, size: usize) -> Hash {
        root(&self.leaves[..size])
    }

    /// Inclusion proof for leaf `index` in the tree of the first `size` leaves.
    pub fn proof(&self, index: usize, size: usize) -> Vec<Hash> {
        inclusion_proof(index, &self.leaves[..size])
    }

    pub fn leaf(&self, index: usize) -> Option<Hash> {
        self.leaves.get(index).copied()
    }
}
