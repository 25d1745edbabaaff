"""EK and AK templates of the trust agent (pure bytes)."""

from __future__ import annotations

import pytest
from tpm2_pytss.utils import NoSuchIndex, create_ek_template

from soapattest.agent.templates import ak_template, ek_template, same_key_kind
from soapattest.tpm.constants import EccCurve, ObjectAttributes, TpmAlg
from soapattest.tpm.marshal import EK_POLICY_SHA256
from soapattest.tpm.public import parse_public


def _no_nv(index: int) -> bytes:
    raise NoSuchIndex(index)


@pytest.mark.parametrize(("ours", "theirs"), [("rsa", "EK-RSA2048"), ("ecc", "EK-ECC256")])
def test_ek_templates_equal_tpm2_pytss_tcg_templates(ours: str, theirs: str) -> None:
    # tpm2-pytss implements the TCG EK Credential Profile templates independently
    _, template = create_ek_template(theirs, _no_nv)
    assert ek_template(ours) == bytes(template.marshal())


@pytest.mark.parametrize("key_type", ["rsa", "ecc"])
def test_ek_template_fields(key_type: str) -> None:
    t = parse_public(ek_template(key_type))
    assert t.name_alg == TpmAlg.SHA256
    assert t.auth_policy == EK_POLICY_SHA256
    assert t.symmetric == (TpmAlg.AES, 128, TpmAlg.CFB)
    assert t.has_attributes(ObjectAttributes.RESTRICTED | ObjectAttributes.DECRYPT
                            | ObjectAttributes.ADMIN_WITH_POLICY)
    assert not t.has_attributes(ObjectAttributes.USER_WITH_AUTH)
    if key_type == "rsa":
        assert (t.rsa_bits, t.unique) == (2048, bytes(256))
    else:
        assert (t.ecc_curve, t.unique) == (EccCurve.NIST_P256, (bytes(32), bytes(32)))


def test_ek_nonce_fills_unique() -> None:
    assert parse_public(ek_template("rsa", b"\x01\x02")).unique == b"\x01\x02" + bytes(254)
    x, y = parse_public(ek_template("ecc", b"\x07")).unique  # type: ignore[misc]
    assert (x, y) == (b"\x07" + bytes(31), bytes(32))
    with pytest.raises(ValueError, match="nonce"):
        ek_template("ecc", bytes(33))


@pytest.mark.parametrize(("key_type", "scheme"), [("ecc", TpmAlg.ECDSA), ("rsa", TpmAlg.RSASSA)])
def test_ak_template(key_type: str, scheme: int) -> None:
    t = parse_public(ak_template(key_type))
    assert t.object_attributes == (
        ObjectAttributes.FIXED_TPM | ObjectAttributes.FIXED_PARENT
        | ObjectAttributes.SENSITIVE_DATA_ORIGIN | ObjectAttributes.USER_WITH_AUTH
        | ObjectAttributes.RESTRICTED | ObjectAttributes.SIGN_ENCRYPT
    )
    assert (t.scheme, t.scheme_hash, t.symmetric, t.auth_policy) == (
        scheme, TpmAlg.SHA256, None, b"")


def test_unknown_key_types_refused() -> None:
    for fn in (ek_template, ak_template):
        with pytest.raises(ValueError, match="unknown"):
            fn("dsa")


def test_same_key_kind_ignores_only_unique() -> None:
    ecc, rsa = parse_public(ak_template("ecc")), parse_public(ak_template("rsa"))
    assert same_key_kind(ecc, parse_public(ak_template("ecc")))
    assert not same_key_kind(ecc, rsa)
    ek = parse_public(ek_template("ecc"))
    assert not same_key_kind(ecc, ek)  # same curve, other attributes and policy
