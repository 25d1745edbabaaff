"""Validation of GetQuote arguments (nonce, PCR selection) by the agent backend."""

from __future__ import annotations

from typing import Any

import pytest

from soapattest.agent.backend import validate_nonce, validate_selection
from soapattest.agent.tpm import parse_tcti
from soapattest.errors import InvalidArgumentError

ACTIVE = ("sha1", "sha256")


@pytest.mark.parametrize("size", [1, 32, 64])
def test_nonce_sizes_accepted(size: int) -> None:
    assert validate_nonce(bytes(size)) == bytes(size)


@pytest.mark.parametrize("nonce", [b"", None, bytes(65), bytes(1000)])
def test_nonce_refused(nonce: bytes | None) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        validate_nonce(nonce)
    assert err.value.argument == "nonce"


def test_selection_accepted_in_order() -> None:
    sel = validate_selection([("sha256", [7, 0]), ("sha1", [23])], ACTIVE)
    assert sel.banks == (("sha256", (0, 7)), ("sha1", (23,)))


@pytest.mark.parametrize(
    ("selection", "needle"),
    [
        ([], "empty"),
        (None, "empty"),
        ([("md5", [0])], "unknown PCR bank"),
        ([("sha384", [0])], "not active"),
        ([("sha256", [0]), ("sha256", [1])], "listed twice"),
        ([("sha256", [])], "selects no PCR"),
        ([("sha256", [1, 1])], "listed twice"),
        ([("sha256", [24])], "outside"),
        ([("sha256", [-1])], "outside"),
        ([("sha256", ["7"])], "outside"),
        ([("sha1", [0])] * 6, "at most 5"),
    ],
)
def test_selection_refused(selection: Any, needle: str) -> None:
    with pytest.raises(InvalidArgumentError, match=needle) as err:
        validate_selection(selection, ACTIVE)
    assert err.value.argument == "selection"


def test_parse_tcti() -> None:
    assert parse_tcti("device:/dev/tpmrm0") == ("device", "/dev/tpmrm0")
    assert parse_tcti("swtpm:host=127.0.0.1,port=2321") == ("swtpm", "host=127.0.0.1,port=2321")
    assert parse_tcti("tabrmd") == ("tabrmd", None)
    with pytest.raises(ValueError):
        parse_tcti(":conf")


def test_trim_der_cuts_nv_padding() -> None:
    from soapattest.agent.tpmtypes import trim_der

    short = b"\x30\x03\x02\x01\x05"
    assert trim_der(short + b"\xff" * 10) == short
    long_form = b"\x30\x82\x01\x00" + bytes(256)
    assert trim_der(long_form + bytes(20)) == long_form
    for not_der in (b"", b"\x04\x01a", b"\x30\x85" + bytes(8), b"\x30\x82\x10\x00abc"):
        assert trim_der(not_der) == not_der  # left alone when it is not a complete SEQUENCE
