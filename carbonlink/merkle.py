"""Merkle trees over ledger batches, exactly as RFC 9162 (Certificate Transparency 2.0) §2.1 defines them.

The input is an ordered list of leaf *data* (for the ledger: the batch's entry hashes in seq order).
With SHA-256 as the hash (RFC 9162 §2.1.1)::

    MTH({})        = SHA-256()                                      empty tree
    MTH({d(0)})    = SHA-256(0x00 || d(0))                          leaf hash
    MTH(D[n])      = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))    n > 1, k the largest power of 2 < n

The distinct 0x00 / 0x01 prefixes keep a leaf from passing for an interior node (second-preimage
resistance). An inclusion proof (§2.1.3.1) lists the sibling hashes from the leaf up to the root;
:func:`root_from_inclusion_proof` is the verification algorithm of §2.1.3.2, returning the root the
proof leads to so that the caller compares it with the root it trusts.

Reference: RFC 9162, "Certificate Transparency Version 2.0", B. Laurie, E. Messeri, R. Stradling,
December 2021, https://www.rfc-editor.org/rfc/rfc9162#section-2.1.
"""

import hashlib
from collections.abc import Sequence

from carbonlink.errors import CarbonlinkError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_BYTES = 32


class MerkleError(CarbonlinkError, ValueError):
    """A leaf index outside the tree, or a proof of the wrong length for it."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one leaf."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """The k of RFC 9162 §2.1.1: the largest power of two smaller than ``size`` (``size`` > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH of the leaves (leaf data, in order): the Merkle Tree Hash of RFC 9162 §2.1.1."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    return _subtree_hash(leaves, 0, len(leaves))


def _subtree_hash(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    # Recursion depth is log2 of the size, so no stack concern even for millions of leaves.
    if end - start == 1:
        return leaf_hash(leaves[start])
    k = _split(end - start)
    return node_hash(_subtree_hash(leaves, start, start + k), _subtree_hash(leaves, start + k, end))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 §2.1.3.1: the sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise MerkleError(f"leaf index {index} is outside a tree of {len(leaves)} leaves")
    path: list[bytes] = []
    start, end = 0, len(leaves)
    # Walk down from the root, noting the sibling subtree at each level; the proof lists them upwards.
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(_subtree_hash(leaves, start + k, end))
            end = start + k
        else:
            path.append(_subtree_hash(leaves, start, start + k))
            start += k
    path.reverse()
    return path


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from leaf data ``leaf`` at ``index`` of a tree of ``size`` leaves.

    The algorithm of RFC 9162 §2.1.3.2 up to its final comparison: the caller compares the result
    with the root it trusts. Raises :class:`MerkleError` when the index is outside the tree or the
    proof has too many or too few hashes for that position (steps 1, 4a and 5 of the algorithm).
    """
    if not 0 <= index < size:
        raise MerkleError(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn = index, size - 1
    root = leaf_hash(leaf)
    for step in proof:
        if len(step) != HASH_BYTES:
            raise MerkleError(f"a proof hash is {HASH_BYTES} bytes, got {len(step)}")
        if sn == 0:
            raise MerkleError(f"the proof is longer than a path to leaf {index} of a tree of {size} leaves")
        if fn & 1 or fn == sn:
            root = node_hash(step, root)
            # Climb past the levels where this node is a right edge with no sibling (unbalanced tree).
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            root = node_hash(root, step)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleError(f"the proof is shorter than a path to leaf {index} of a tree of {size} leaves")
    return root
