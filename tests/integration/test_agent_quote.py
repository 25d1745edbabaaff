"""GetQuote against a real swtpm over real HTTP, and PCRs changing during a quote.

The quote is checked with soapattest's own parsers (TPMS_ATTEST,
TPMT_SIGNATURE, TPM2B_PUBLIC): signature, nonce, selection, PCR digest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import zeep

from soapattest.agent.tpm import TpmAccess
from soapattest.errors import PcrsChangingError
from soapattest.sim import SimCluster, SimHost
from soapattest.tpm.attest import parse_attest
from soapattest.tpm.constants import TpmAlg, TpmSt
from soapattest.tpm.pcr import PcrSelection, pcr_digest
from soapattest.tpm.public import parse_public
from soapattest.tpm.signature import parse_signature, verify_signature
from tests.swtpm_fixture import have_swtpm

pytestmark = [
    pytest.mark.swtpm,
    pytest.mark.skipif(not have_swtpm(), reason="swtpm is not installed"),
]

LOG = "gotpmtools_rhel8-uefi"  # sha1, sha256, sha384 banks


def fault_code(exc: zeep.exceptions.Fault) -> str:
    return str(exc.code).rpartition(":")[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    with SimCluster(tmp_path_factory.mktemp("agent-quote"), agent_log_level="WARNING") as c:
        yield c


@pytest.fixture(scope="module", params=["ecc", "rsa"])
def host(request: pytest.FixtureRequest, cluster: SimCluster) -> SimHost:
    return cluster.start_host(f"q-{request.param}", log=LOG, ak_type=request.param)


@pytest.fixture(scope="module")
def client(host: SimHost) -> zeep.Client:
    return zeep.Client(host.agent_url + "?wsdl")


@pytest.fixture(scope="module")
def ak(client: zeep.Client) -> Any:
    return parse_public(client.service.GetIdentity().ak_public)


def _values(quote: Any) -> dict[str, dict[int, bytes]]:
    return {b.bank: {p.index: p.value for p in b.pcr} for b in quote.banks}


def _check_quote(quote: Any, ak: Any, nonce: bytes, selection: dict[str, list[int]]) -> None:
    """Every check a verifier makes, with the project's parsers."""
    attest = parse_attest(quote.attest)
    sig = parse_signature(quote.signature)
    scheme = TpmAlg.ECDSA if ak.type == TpmAlg.ECC else TpmAlg.RSASSA
    verify_signature(ak.public_key(), sig, quote.attest, expected_sig_alg=scheme,
                     expected_hash_alg=TpmAlg.SHA256)
    assert attest.type == TpmSt.ATTEST_QUOTE
    assert attest.extra_data == nonce
    assert attest.qualified_signer  # the AK's qualified name
    assert attest.quote is not None
    assert attest.quote.pcr_select.as_dict() == selection
    values = _values(quote)
    assert {b: sorted(v) for b, v in values.items()} == selection
    expected = pcr_digest("sha256", PcrSelection.from_mapping(selection), values)
    assert attest.quote.pcr_digest == expected


@pytest.mark.parametrize(
    "selection",
    [
        {"sha256": list(range(24))},
        {"sha1": [0, 7], "sha256": [0, 4, 7], "sha384": [10]},
        {"sha384": [23]},
    ],
)
def test_quote_verifies(client: zeep.Client, ak: Any, selection: dict[str, list[int]]) -> None:
    nonce = os.urandom(32)
    quote = client.service.GetQuote(
        nonce=nonce, selection=[{"bank": b, "pcr": p} for b, p in selection.items()]
    )
    _check_quote(quote, ak, nonce, selection)


def test_tampered_attest_fails_signature(client: zeep.Client, ak: Any) -> None:
    from soapattest.errors import SignatureInvalidError

    quote = client.service.GetQuote(nonce=b"n", selection=[{"bank": "sha256", "pcr": [0]}])
    forged = bytearray(quote.attest)
    forged[-1] ^= 1
    scheme = TpmAlg.ECDSA if ak.type == TpmAlg.ECC else TpmAlg.RSASSA
    with pytest.raises(SignatureInvalidError):
        verify_signature(ak.public_key(), parse_signature(quote.signature), bytes(forged),
                         expected_sig_alg=scheme, expected_hash_alg=TpmAlg.SHA256)


@pytest.mark.parametrize("size", [1, 20, 64])
def test_nonce_sizes_accepted(client: zeep.Client, ak: Any, size: int) -> None:
    nonce = os.urandom(size)
    quote = client.service.GetQuote(nonce=nonce, selection=[{"bank": "sha256", "pcr": [7]}])
    _check_quote(quote, ak, nonce, {"sha256": [7]})


@pytest.mark.parametrize(
    ("nonce", "selection", "needle"),
    [
        (b"", [{"bank": "sha256", "pcr": [0]}], "nonce"),
        (b"x" * 65, [{"bank": "sha256", "pcr": [0]}], "nonce"),
        (b"x", [{"bank": "md5", "pcr": [0]}], "unknown PCR bank"),
        (b"x", [{"bank": "sha512", "pcr": [0]}], "not active"),
        (b"x", [{"bank": "sha256", "pcr": [1]}, {"bank": "sha256", "pcr": [2]}], "twice"),
        (b"x", [{"bank": "sha256", "pcr": [3, 3]}], "twice"),
        (b"x", [{"bank": "sha256", "pcr": [24]}], "outside"),
    ],
)
def test_bad_quote_requests_are_faults(client: zeep.Client, nonce: bytes, selection: list[Any],
                                       needle: str) -> None:
    with pytest.raises(zeep.exceptions.Fault) as err:
        client.service.GetQuote(nonce=nonce, selection=selection)
    assert fault_code(err.value) == "Client.InvalidArgument"
    assert needle in str(err.value.message)


# --------------------------------------------------------------------------
# PCRs changing between the PCR read and the quote (in-process TpmAccess on the
# host's swtpm while its agent is stopped: a swtpm serves one connection).
# --------------------------------------------------------------------------


class ExtendingTpm(TpmAccess):
    """TpmAccess that extends ``pcr`` right after reading the PCRs, ``times`` times."""

    def __init__(self, tcti: str, pcr: int, times: int, **kw: Any) -> None:
        super().__init__(tcti, **kw)
        self.pcr, self.times, self.extended = pcr, times, 0

    def _read_pcrs(self, selection: PcrSelection) -> Any:
        result = super()._read_pcrs(selection)
        if self.extended < self.times:
            self.extended += 1
            banks = self.active_banks()
            self.pcr_extend(self.pcr, {b: bytes([self.extended]) * _SIZE[b] for b in banks})
        return result


_SIZE = {"sha1": 20, "sha256": 32, "sha384": 48}


@pytest.fixture
def direct_tpm_tcti(cluster: SimCluster) -> Iterator[str]:
    host = cluster.start_host(f"change-{os.getpid()}-{os.urandom(3).hex()}", log=LOG)
    host.stop_agent()
    yield host.swtpm.tcti
    cluster.stop_host(host.name)


@pytest.mark.parametrize(
    ("pcr", "times", "attempts"),
    [
        (7, 0, 1),  # nothing changes: first attempt
        (7, 1, 2),  # pcrUpdateCounter moves: retried once
        (23, 1, 2),  # PCR 23 does not move the counter: caught by the digest check
    ],
)
def test_quote_retries_when_pcrs_change(direct_tpm_tcti: str, pcr: int, times: int,
                                        attempts: int) -> None:
    selection = PcrSelection.from_mapping({"sha256": [0, 7, 23], "sha1": [7]})
    with ExtendingTpm(direct_tpm_tcti, pcr, times, quote_attempts=3) as tpm:
        info = tpm.ensure_ak("ecc", 0x81010002)
        result = tpm.quote(b"nonce", selection)
        assert result.attempts == attempts
        assert tpm.extended == times
        attest = parse_attest(result.attest)
        assert attest.quote is not None
        assert attest.quote.pcr_digest == pcr_digest("sha256", selection, result.pcrs)
        _, now = tpm.read_pcrs(selection)
        assert now == result.pcrs  # the values reported are the current, quoted ones
        assert parse_public(info.public).name() == info.name


def test_quote_gives_up_when_pcrs_keep_changing(direct_tpm_tcti: str) -> None:
    selection = PcrSelection.from_mapping({"sha256": [7]})
    with ExtendingTpm(direct_tpm_tcti, 7, times=100, quote_attempts=3) as tpm:
        tpm.ensure_ak("ecc", 0x81010002)
        with pytest.raises(PcrsChangingError) as err:
            tpm.quote(b"nonce", selection)
    assert err.value.attempts == 3
    assert err.value.code == "Server.PcrsChanging"
