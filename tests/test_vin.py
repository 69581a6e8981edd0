"""VINs: checked against ISO 3779's alphabet and hashed in one spelling."""

import hashlib

import pytest

from carbonlink.vin import normalise_vin, vin_hash

VIN = "1G1RC6S5XHU000001"


def test_vin_hash_is_sha256_of_the_capitalised_vin() -> None:
    """The hash is SHA-256 of the 17 ASCII capitals, so any spelling of one VIN hashes alike."""
    expected = hashlib.sha256(VIN.encode("ascii")).digest()
    assert vin_hash(VIN) == expected
    assert vin_hash(f"  {VIN.lower()}\n") == expected


@pytest.mark.parametrize(
    ("vin", "message"),
    [
        (VIN[:-1], "17 characters"),
        (VIN + "1", "17 characters"),
        (VIN[:-1] + "O", "other than I, O and Q"),
        (VIN[:-1] + "-", "not a VIN"),
        ("", "17 characters"),
    ],
)
def test_what_is_not_a_vin_is_refused(vin: str, message: str) -> None:
    """Wrong length and letters ISO 3779 leaves out are errors naming the problem."""
    with pytest.raises(ValueError, match=message):
        normalise_vin(vin)
