"""PCR selections, PCR digests and extend (soapattest.tpm.pcr)."""

from __future__ import annotations

import hashlib
import struct

import pytest

from soapattest.errors import (
    InvalidPcrSelectionError,
    MissingPcrValueError,
    PcrValueLengthError,
    TrailingBytesError,
    TruncatedError,
    UnknownAlgorithmError,
    UnknownBankError,
)
from soapattest.tpm import pcr as pcr_module
from soapattest.tpm.constants import TpmAlg
from soapattest.tpm.pcr import (
    PcrSelection,
    extend,
    parse_pcr_selection,
    pcr_digest,
    pcr_selection_from_bytes,
)
from soapattest.tpm.reader import Reader


def _bank(alg: int, select: bytes, size: int | None = None) -> bytes:
    return struct.pack(">HB", alg, len(select) if size is None else size) + select


def _tpml(*banks: bytes, count: int | None = None) -> bytes:
    return struct.pack(">I", len(banks) if count is None else count) + b"".join(banks)


# ---------------------------------------------------------------- from_mapping


def test_from_mapping_keeps_bank_order_and_sorts_indices() -> None:
    sel = PcrSelection.from_mapping({"sha256": [7, 0, 23], "sha1": {1}})
    assert sel.banks == (("sha256", (0, 7, 23)), ("sha1", (1,)))
    assert list(sel.pcrs()) == [("sha256", 0), ("sha256", 7), ("sha256", 23), ("sha1", 1)]
    assert sel.as_dict() == {"sha256": [0, 7, 23], "sha1": [1]}
    assert not sel.is_empty()


def test_to_bytes_is_tpml_pcr_selection_with_three_octets() -> None:
    sel = PcrSelection.from_mapping({"sha256": [0, 7, 8, 23], "sha1": [1]})
    assert sel.to_bytes() == _tpml(
        _bank(TpmAlg.SHA256, bytes([0x81, 0x01, 0x80])), _bank(TpmAlg.SHA1, bytes([0x02, 0, 0]))
    )


def test_from_mapping_rejects_empty_mapping() -> None:
    with pytest.raises(InvalidPcrSelectionError):
        PcrSelection.from_mapping({})


def test_from_mapping_rejects_bank_without_pcrs() -> None:
    with pytest.raises(InvalidPcrSelectionError):
        PcrSelection.from_mapping({"sha256": [0], "sha1": []})


def test_from_mapping_rejects_unknown_bank() -> None:
    with pytest.raises(UnknownBankError) as exc:
        PcrSelection.from_mapping({"md5": [0]})
    assert exc.value.bank == "md5"


@pytest.mark.parametrize("index", [24, -1, 255, True, 1.0, "1"])
def test_from_mapping_rejects_bad_indices(index: object) -> None:
    with pytest.raises(InvalidPcrSelectionError):
        PcrSelection.from_mapping({"sha256": [0, index]})  # type: ignore[list-item]


@pytest.mark.parametrize("index", [0, 23])
def test_from_mapping_accepts_boundary_indices(index: int) -> None:
    assert PcrSelection.from_mapping({"sha256": [index]}).banks == (("sha256", (index,)),)


def test_from_mapping_rejects_duplicate_index() -> None:
    with pytest.raises(InvalidPcrSelectionError):
        PcrSelection.from_mapping({"sha256": [1, 1]})


# ---------------------------------------------------------------- parse


def test_parse_round_trips_to_bytes() -> None:
    sel = PcrSelection.from_mapping({"sha1": [0, 1, 2], "sha256": [0, 7, 16], "sha384": [23]})
    assert pcr_selection_from_bytes(sel.to_bytes()) == sel


def test_parse_rejects_count_above_hash_count_max() -> None:
    banks = [_bank(alg, b"\x01\0\0") for alg in (4, 11, 12, 13, 18)]
    assert len(pcr_selection_from_bytes(_tpml(*banks)).banks) == 5
    with pytest.raises(InvalidPcrSelectionError):
        pcr_selection_from_bytes(_tpml(*banks, count=6))


def test_parse_rejects_huge_count_before_reading() -> None:
    with pytest.raises(InvalidPcrSelectionError):
        pcr_selection_from_bytes(struct.pack(">I", 0xFFFFFFFF))


def test_parse_rejects_unknown_hash() -> None:
    with pytest.raises(UnknownAlgorithmError) as exc:
        pcr_selection_from_bytes(_tpml(_bank(0x0099, b"\x01\0\0")))
    assert exc.value.alg == 0x0099


def test_parse_rejects_null_hash() -> None:
    with pytest.raises(UnknownAlgorithmError):
        pcr_selection_from_bytes(_tpml(_bank(TpmAlg.NULL, b"\x01\0\0")))


def test_parse_rejects_duplicate_bank() -> None:
    one = _bank(TpmAlg.SHA256, b"\x01\0\0")
    two = _bank(TpmAlg.SHA256, b"\x02\0\0")
    with pytest.raises(InvalidPcrSelectionError):
        pcr_selection_from_bytes(_tpml(one, two))


def test_parse_rejects_size_of_select_zero() -> None:
    with pytest.raises(InvalidPcrSelectionError):
        pcr_selection_from_bytes(_tpml(_bank(TpmAlg.SHA256, b"")))


@pytest.mark.parametrize("select", [b"\0\0\0\0", b"\0\0\0\x01", b"\0" * 255])
def test_parse_rejects_size_of_select_beyond_24_pcrs(select: bytes) -> None:
    with pytest.raises(InvalidPcrSelectionError):
        pcr_selection_from_bytes(_tpml(_bank(TpmAlg.SHA256, select)))


@pytest.mark.parametrize(
    ("select", "expected"),
    [(b"\x81", (0, 7)), (b"\x01\x80", (0, 15)), (b"\x01\0\x80", (0, 23))],
)
def test_parse_accepts_short_size_of_select(select: bytes, expected: tuple[int, ...]) -> None:
    sel = pcr_selection_from_bytes(_tpml(_bank(TpmAlg.SHA256, select)))
    assert sel.banks == (("sha256", expected),)


def test_parse_accepts_bank_without_pcrs_and_empty_list() -> None:
    sel = pcr_selection_from_bytes(_tpml(_bank(TpmAlg.SHA1, b"\0\0\0")))
    assert sel.banks == (("sha1", ()),)
    assert sel.is_empty()
    assert pcr_selection_from_bytes(_tpml()).is_empty()


def test_parse_rejects_truncated_bitmap() -> None:
    data = _tpml(_bank(TpmAlg.SHA256, b"\x01\0\0"))
    pcr_selection_from_bytes(data)
    with pytest.raises(TruncatedError):
        pcr_selection_from_bytes(data[:-1])


def test_parse_rejects_missing_bank() -> None:
    with pytest.raises(TruncatedError):
        pcr_selection_from_bytes(struct.pack(">I", 1))


def test_from_bytes_rejects_trailing_bytes() -> None:
    data = _tpml(_bank(TpmAlg.SHA256, b"\x01\0\0"))
    with pytest.raises(TrailingBytesError):
        pcr_selection_from_bytes(data + b"\0")


def test_parse_pcr_selection_leaves_reader_after_structure() -> None:
    data = _tpml(_bank(TpmAlg.SHA256, b"\x01\0\0")) + b"tail"
    r = Reader(data, "test")
    parse_pcr_selection(r)
    assert r.remaining == 4


# ---------------------------------------------------------------- pcr_digest / extend


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()  # noqa: S324 - the sha1 PCR bank


def _values() -> dict[str, dict[int, bytes]]:
    return {
        "sha1": {i: _sha1(bytes([i])) for i in range(24)},
        "sha256": {i: hashlib.sha256(bytes([i])).digest() for i in range(24)},
    }


def test_pcr_digest_hashes_values_in_selection_order() -> None:
    values = _values()
    sel = PcrSelection.from_mapping({"sha256": [7, 0], "sha1": [3]})
    expected = hashlib.sha256(values["sha256"][0] + values["sha256"][7] + values["sha1"][3])
    assert pcr_digest("sha256", sel, values) == expected.digest()
    other = PcrSelection.from_mapping({"sha1": [3], "sha256": [7, 0]})
    assert pcr_digest("sha256", other, values) != expected.digest()
    assert (
        pcr_digest("sha384", sel, values)
        == hashlib.sha384(values["sha256"][0] + values["sha256"][7] + values["sha1"][3]).digest()
    )


def test_pcr_digest_rejects_missing_index() -> None:
    values = _values()
    del values["sha256"][7]
    with pytest.raises(MissingPcrValueError) as exc:
        pcr_digest("sha256", PcrSelection.from_mapping({"sha256": [0, 7]}), values)
    assert (exc.value.bank, exc.value.index) == ("sha256", 7)


def test_pcr_digest_rejects_missing_bank() -> None:
    with pytest.raises(MissingPcrValueError):
        pcr_digest("sha256", PcrSelection.from_mapping({"sha384": [0]}), _values())


def test_pcr_digest_rejects_wrong_length() -> None:
    values = _values()
    values["sha256"][0] = values["sha1"][0]
    with pytest.raises(PcrValueLengthError) as exc:
        pcr_digest("sha256", PcrSelection.from_mapping({"sha256": [0]}), values)
    assert exc.value.index == 0


def test_pcr_digest_rejects_unknown_hash_name() -> None:
    with pytest.raises(UnknownBankError):
        pcr_digest("md5", PcrSelection.from_mapping({"sha256": [0]}), _values())


def test_extend_matches_definition() -> None:
    old = bytes(32)
    digest = hashlib.sha256(b"event").digest()
    assert extend("sha256", old, digest) == hashlib.sha256(old + digest).digest()
    assert extend("sha1", bytes(20), bytes(20)) == _sha1(bytes(40))


@pytest.mark.parametrize(("old", "digest"), [(bytes(31), bytes(32)), (bytes(32), bytes(20))])
def test_extend_rejects_wrong_lengths(old: bytes, digest: bytes) -> None:
    with pytest.raises(PcrValueLengthError):
        extend("sha256", old, digest)


def test_extend_rejects_unknown_bank() -> None:
    with pytest.raises(UnknownBankError):
        extend("sha3", bytes(32), bytes(32))


def test_memoised_selection_equals_fresh_parse() -> None:
    sel = PcrSelection.from_mapping({"sha384": [2, 3], "sha512": [22]})
    first = pcr_selection_from_bytes(sel.to_bytes())
    again = pcr_selection_from_bytes(sel.to_bytes())
    assert first == again == sel
    r = Reader(sel.to_bytes() + b"next", "test")
    assert parse_pcr_selection(r) == sel
    assert r.raw(4) == b"next"


def test_memo_is_bounded_and_never_masks_errors() -> None:
    for n in range(1, 600):
        bits = n.to_bytes(3, "little")
        sel = pcr_selection_from_bytes(_tpml(_bank(TpmAlg.SHA256, bits)))
        assert sel.banks[0][1] == tuple(i for i in range(24) if n >> i & 1)
    assert len(pcr_module._CACHE) <= pcr_module._CACHE_MAX
    good = _tpml(_bank(TpmAlg.SHA256, b"\x01\0\0"))
    pcr_selection_from_bytes(good)
    with pytest.raises(TrailingBytesError):
        pcr_selection_from_bytes(good + b"\0")
    with pytest.raises(TruncatedError):
        pcr_selection_from_bytes(good[:-1])
