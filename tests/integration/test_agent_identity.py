"""Trust agent identity and credential activation, against a real swtpm over real HTTP.

One simulated host per AK type (ECC and RSA); the agent is reached with zeep
through the WSDL it serves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import zeep
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from soapattest.sim import SimCluster, SimHost
from soapattest.tpm.constants import ObjectAttributes, TpmAlg
from soapattest.tpm.credential import make_credential
from soapattest.tpm.public import parse_public
from tests.swtpm_fixture import have_swtpm

pytestmark = [
    pytest.mark.swtpm,
    pytest.mark.skipif(not have_swtpm(), reason="swtpm is not installed"),
]

AK_ATTRS = (
    ObjectAttributes.FIXED_TPM
    | ObjectAttributes.FIXED_PARENT
    | ObjectAttributes.SENSITIVE_DATA_ORIGIN
    | ObjectAttributes.USER_WITH_AUTH
    | ObjectAttributes.RESTRICTED
    | ObjectAttributes.SIGN_ENCRYPT
)


def fault_code(exc: zeep.exceptions.Fault) -> str:
    """``Client.InvalidArgument`` from zeep's ``soap11env:Client.InvalidArgument``."""
    return str(exc.code).rpartition(":")[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    with SimCluster(tmp_path_factory.mktemp("agent-identity"), agent_log_level="WARNING") as c:
        yield c


@pytest.fixture(scope="module", params=["ecc", "rsa"])
def host(request: pytest.FixtureRequest, cluster: SimCluster) -> SimHost:
    return cluster.start_host(f"id-{request.param}", log="gotpmtools_arch-linux-workstation",
                              ak_type=request.param)


@pytest.fixture
def client(host: SimHost) -> zeep.Client:
    # function scope: an agent restart moves the agent to a new port
    return zeep.Client(host.agent_url + "?wsdl")


@pytest.fixture(scope="module")
def identity(host: SimHost) -> object:
    return zeep.Client(host.agent_url + "?wsdl").service.GetIdentity()


def _eks(identity: object) -> dict[str, object]:
    return {ek.key_type: ek for ek in identity.ek}  # type: ignore[attr-defined]


def test_identity_has_both_eks_with_certificates(identity: object) -> None:
    eks = _eks(identity)
    assert sorted(eks) == ["ecc", "rsa"]
    for ek in eks.values():
        assert ek.certificate  # type: ignore[attr-defined]


@pytest.mark.parametrize("key_type", ["rsa", "ecc"])
def test_ek_certificate_chains_to_cluster_ca(identity: object, cluster: SimCluster,
                                             key_type: str) -> None:
    root = x509.load_pem_x509_certificate(cluster.ca_root_cert.read_bytes())
    intermediate = x509.load_pem_x509_certificate(cluster.ca_intermediate_cert.read_bytes())
    cert = x509.load_der_x509_certificate(_eks(identity)[key_type].certificate)  # type: ignore[attr-defined]
    intermediate.verify_directly_issued_by(root)
    cert.verify_directly_issued_by(intermediate)
    # the EK certificate is not self-issued / not issued by the root directly
    with pytest.raises((InvalidSignature, ValueError)):
        cert.verify_directly_issued_by(root)


@pytest.mark.parametrize("key_type", ["rsa", "ecc"])
def test_ek_public_matches_certificate(identity: object, key_type: str) -> None:
    ek = _eks(identity)[key_type]
    public = parse_public(ek.public)  # type: ignore[attr-defined]
    cert = x509.load_der_x509_certificate(ek.certificate)  # type: ignore[attr-defined]
    assert public.public_key().public_numbers() == cert.public_key().public_numbers()
    assert public.type == (TpmAlg.RSA if key_type == "rsa" else TpmAlg.ECC)
    assert public.has_attributes(ObjectAttributes.RESTRICTED | ObjectAttributes.DECRYPT)


def test_ak_is_restricted_signing_key_with_name(identity: object, host: SimHost) -> None:
    ak = parse_public(identity.ak_public)  # type: ignore[attr-defined]
    assert identity.ak_type == host.spec.ak_type  # type: ignore[attr-defined]
    assert ak.object_attributes == AK_ATTRS
    assert ak.type == (TpmAlg.ECC if host.spec.ak_type == "ecc" else TpmAlg.RSA)
    assert ak.scheme == (TpmAlg.ECDSA if host.spec.ak_type == "ecc" else TpmAlg.RSASSA)
    assert ak.name() == identity.ak_name  # type: ignore[attr-defined]


def test_identity_reports_tpm_facts(identity: object, host: SimHost) -> None:
    assert list(identity.pcr_bank) == list(host.plan.banks)  # type: ignore[attr-defined]
    assert identity.tpm_manufacturer == "IBM"  # swtpm reports IBM's vendor ID  # type: ignore[attr-defined]
    assert identity.tpm_manufacturer_id == int.from_bytes(b"IBM\0", "big")  # type: ignore[attr-defined]
    assert identity.firmware_version_1 > 0  # type: ignore[attr-defined]
    assert identity.agent_version  # type: ignore[attr-defined]


def test_ak_survives_agent_restart(cluster: SimCluster, host: SimHost) -> None:
    before = zeep.Client(host.agent_url + "?wsdl").service.GetIdentity()
    host.stop_agent()
    host.start_agent()
    after = zeep.Client(host.agent_url + "?wsdl").service.GetIdentity()
    assert after.ak_name == before.ak_name
    assert after.ak_public == before.ak_public


@pytest.mark.parametrize("key_type", ["rsa", "ecc"])
def test_activate_credential_round_trip(identity: object, client: zeep.Client,
                                        key_type: str) -> None:
    ek = parse_public(_eks(identity)[key_type].public)  # type: ignore[attr-defined]
    secret = os.urandom(32)
    blob, enc = make_credential(ek, identity.ak_name, secret, random_bytes=os.urandom)  # type: ignore[attr-defined]
    got = client.service.ActivateCredential(ek_type=key_type, credential_blob=blob,
                                            encrypted_secret=enc)
    assert got == secret


def test_activate_credential_for_other_name_is_rejected(identity: object,
                                                        client: zeep.Client) -> None:
    ek = parse_public(_eks(identity)["rsa"].public)  # type: ignore[attr-defined]
    other_name = identity.ak_name[:2] + bytes(32)  # type: ignore[attr-defined]
    blob, enc = make_credential(ek, other_name, b"0123456789abcdef", random_bytes=os.urandom)
    with pytest.raises(zeep.exceptions.Fault) as err:
        client.service.ActivateCredential(ek_type="rsa", credential_blob=blob,
                                          encrypted_secret=enc)
    assert fault_code(err.value) == "Client.CredentialRejected"


def test_activate_credential_with_the_other_ek_is_rejected(identity: object,
                                                           client: zeep.Client) -> None:
    ek = parse_public(_eks(identity)["ecc"].public)  # type: ignore[attr-defined]
    blob, enc = make_credential(ek, identity.ak_name, b"abc", random_bytes=os.urandom)  # type: ignore[attr-defined]
    with pytest.raises(zeep.exceptions.Fault) as err:
        client.service.ActivateCredential(ek_type="rsa", credential_blob=blob,
                                          encrypted_secret=enc)
    assert fault_code(err.value) == "Client.CredentialRejected"


@pytest.mark.parametrize(
    ("blob", "secret", "argument"),
    [
        (b"\x00\x05abc", b"\x00\x01a", "credential_blob"),  # TPM2B size beyond the data
        (b"\x00\x01ab", b"\x00\x01a", "credential_blob"),  # trailing byte
        (b"\x00\x01a", b"", "encrypted_secret"),
        (b"\x00" * 2000, b"\x00\x01a", "credential_blob"),  # over the size bound
    ],
)
def test_activate_credential_malformed_blobs(client: zeep.Client, blob: bytes, secret: bytes,
                                             argument: str) -> None:
    with pytest.raises(zeep.exceptions.Fault) as err:
        client.service.ActivateCredential(ek_type="rsa", credential_blob=blob,
                                          encrypted_secret=secret)
    assert fault_code(err.value) == "Client.InvalidArgument"
    assert argument in str(err.value.message)
