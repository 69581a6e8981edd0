"""The Merkle tree of RFC 9162 §2.1: roots, inclusion proofs and their verification."""

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from carbonlink.merkle import MerkleError, inclusion_proof, merkle_root, root_from_inclusion_proof


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


DATA = [bytes([i]) * 32 for i in range(8)]
L = [leaf(d) for d in DATA]
"""Leaf hashes, written out by hand below so the tests do not trust the module's own helpers."""

N01 = node(L[0], L[1])
N23 = node(L[2], L[3])
N45 = node(L[4], L[5])
N67 = node(L[6], L[7])
N0123 = node(N01, N23)
N4567 = node(N45, N67)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (1, L[0]),
        (2, N01),
        (3, node(N01, L[2])),
        (5, node(N0123, L[4])),
        (8, node(N0123, N4567)),
    ],
)
def test_root_of_small_trees_matches_hand_computation(size: int, expected: bytes) -> None:
    """The root of 1, 2, 3, 5 and 8 leaves follows RFC 9162's split at the largest power of two below n."""
    assert merkle_root(DATA[:size]) == expected


def test_root_of_no_leaves_is_the_hash_of_nothing() -> None:
    """MTH({}) = SHA-256() (RFC 9162 §2.1.1)."""
    assert merkle_root([]) == sha256(b"")


@pytest.mark.parametrize(
    ("size", "index", "expected"),
    [
        (1, 0, []),
        (2, 1, [L[0]]),
        (3, 0, [L[1], L[2]]),
        (3, 2, [N01]),
        (5, 2, [L[3], N01, L[4]]),
        (5, 4, [N0123]),
        (8, 6, [L[7], N45, N0123]),
    ],
)
def test_inclusion_proof_matches_hand_computation(size: int, index: int, expected: list[bytes]) -> None:
    """PATH(m, D[n]) lists the sibling hashes from the leaf up, as RFC 9162 §2.1.3.1 defines it."""
    proof = inclusion_proof(DATA[:size], index)
    assert proof == expected
    assert root_from_inclusion_proof(DATA[index], index, size, proof) == merkle_root(DATA[:size])


# The reference vectors of the Certificate Transparency test suite (RFC 6962 trees, which RFC 9162
# keeps unchanged): leaves, the root of the first n leaves, and two audit paths of the 8-leaf tree.
# Source: transparency-dev/merkle, testonly/constants.go (formerly google/certificate-transparency).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PATHS = {
    0: [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    5: [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_certificate_transparency_vectors(size: int) -> None:
    """Roots of 1 to 8 leaves equal those of an independent implementation of the same RFC."""
    assert merkle_root(CT_LEAVES[:size]).hex() == CT_ROOTS[size - 1]


@pytest.mark.parametrize("index", sorted(CT_PATHS))
def test_proofs_match_the_certificate_transparency_vectors(index: int) -> None:
    """Audit paths of the 8-leaf tree equal the reference ones and lead to its root."""
    proof = inclusion_proof(CT_LEAVES, index)
    assert [step.hex() for step in proof] == CT_PATHS[index]
    assert root_from_inclusion_proof(CT_LEAVES[index], index, 8, proof).hex() == CT_ROOTS[7]


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[bytes], int]:
    leaves = draw(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70))
    return leaves, draw(st.integers(min_value=0, max_value=len(leaves) - 1))


@given(trees())
def test_every_inclusion_proof_verifies(tree: tuple[list[bytes], int]) -> None:
    """For any tree and any leaf, the proof leads from that leaf to the tree's root."""
    leaves, index = tree
    proof = inclusion_proof(leaves, index)
    assert root_from_inclusion_proof(leaves[index], index, len(leaves), proof) == merkle_root(leaves)


@given(trees(), st.data())
def test_a_flipped_bit_breaks_the_proof(tree: tuple[list[bytes], int], data: st.DataObject) -> None:
    """Flipping any one bit of the leaf or of any proof hash leads to another root."""
    leaves, index = tree
    root = merkle_root(leaves)
    proof = inclusion_proof(leaves, index)
    parts = [leaves[index], *proof]
    part = data.draw(st.integers(min_value=0, max_value=len(parts) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=8 * 32 - 1))
    flipped = bytearray(parts[part])
    flipped[bit // 8] ^= 1 << (bit % 8)
    parts[part] = bytes(flipped)
    assert root_from_inclusion_proof(parts[0], index, len(leaves), parts[1:]) != root


@given(trees())
def test_a_proof_for_another_index_fails(tree: tuple[list[bytes], int]) -> None:
    """A proof is bound to its position: used for the next leaf it leads elsewhere or is refused."""
    leaves, index = tree
    assume(len(leaves) > 1 and len(set(leaves)) == len(leaves))
    other = (index + 1) % len(leaves)
    proof = inclusion_proof(leaves, index)
    try:
        root = root_from_inclusion_proof(leaves[other], other, len(leaves), proof)
    except MerkleError:
        return
    assert root != merkle_root(leaves)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (-1, 4)])
def test_an_index_outside_the_tree_is_refused(index: int, size: int) -> None:
    """Verification refuses a leaf index that is not in the tree (RFC 9162 §2.1.3.2 step 1)."""
    with pytest.raises(MerkleError, match="outside"):
        root_from_inclusion_proof(DATA[0], index, size, [])


def test_a_proof_of_the_wrong_length_is_refused() -> None:
    """One hash too many or too few is an error, not a wrong root (steps 4a and 5)."""
    proof = inclusion_proof(DATA[:5], 2)
    with pytest.raises(MerkleError, match="longer"):
        root_from_inclusion_proof(DATA[2], 2, 5, [*proof, L[0]])
    with pytest.raises(MerkleError, match="shorter"):
        root_from_inclusion_proof(DATA[2], 2, 5, proof[:-1])


def test_proof_of_a_leaf_outside_the_tree_is_refused() -> None:
    """Asking for the proof of a leaf past the end is an error."""
    with pytest.raises(MerkleError):
        inclusion_proof(DATA[:3], 3)
