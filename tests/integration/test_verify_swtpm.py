"""The trust engine against real simulated hosts: swtpm + trust agent over real HTTP.

No attestation server is involved: the test plays its part with the server's
SOAP client for agents (:class:`SoapAgentClient`), its registration steps
(:func:`prove_identity`: EK certificate chain, AK checks, MakeCredential /
ActivateCredential, first quote) and the pure engine (``verify_quote``,
``appraise``). Each negative test breaks exactly one thing and sits beside
the positive twin it breaks (usually the same evidence, appraised unbroken).

Hosts (one cluster per test module, started lazily, 2 at a time):

- ``good``: ECC AK, the golden reference (never changed by a test);
- ``spare``: ECC AK, same log; tests that extend a PCR, reboot it or kill its
  agent use it and restore it;
- ``rsa``: RSA AK, another real log;
- ``evil-event`` / ``evil-pcr``: the ``good`` log booted with
  ``tamper="event"`` / ``tamper="pcr"``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from soapattest.agent.tpm import TpmAccess
from soapattest.errors import (
    ActivationError,
    AgentFaultError,
    AgentResponseError,
    AgentUnreachableError,
    EkCertificateError,
    IdentityError,
    NonceError,
)
from soapattest.model import (
    CheckStatus,
    Combine,
    EntryKind,
    Policy,
    QuoteState,
    TrustReport,
    TrustStatus,
    Whitelist,
    WhitelistEntry,
    WhitelistRef,
)
from soapattest.server.agents import AgentIdentity, AgentQuote, SoapAgentClient
from soapattest.server.registration import ProvenIdentity, prove_identity
from soapattest.sim import HostSpec, SimCluster, SimHost
from soapattest.sim.catalog import DEFAULT_LOG
from soapattest.tpm.constants import HASH_BY_NAME
from soapattest.tpm.credential import make_credential
from soapattest.tpm.pcr import PcrSelection
from soapattest.tpm.public import TpmPublic, parse_public
from soapattest.verify.appraise import (
    Appraisal,
    AppraisalInput,
    Evidence,
    appraise,
    required_selection,
    unknown_report,
)
from soapattest.verify.ekcert import load_certificates, validate_ek_certificate
from soapattest.verify.eventlog import appraise_event_log
from soapattest.verify.identity import KeyRules, check_ak
from soapattest.verify.quote import QuoteEvidence, QuoteExpectations, verify_quote
from tests.swtpm_fixture import have_swtpm

pytestmark = [
    pytest.mark.swtpm,
    pytest.mark.skipif(not have_swtpm(), reason="swtpm is not installed"),
]

RSA_LOG = "gotpmtools_ubuntu-2104-no-secure-boot"
SPECS = {
    "good": HostSpec("good", DEFAULT_LOG),
    "spare": HostSpec("spare", DEFAULT_LOG),
    "rsa": HostSpec("rsa", RSA_LOG, ak_type="rsa"),
    "evil-event": HostSpec("evil-event", DEFAULT_LOG, tamper="event"),
    "evil-pcr": HostSpec("evil-pcr", DEFAULT_LOG, tamper="pcr"),
}
FIRMWARE_PCRS = range(8)
AGENT_ERRORS = (AgentUnreachableError, AgentResponseError, AgentFaultError)


# --------------------------------------------------------------------------
# The server's part, reduced to what these tests need
# --------------------------------------------------------------------------


@dataclass
class RegistrationContext:
    """The attributes of the server context that ``prove_identity`` uses."""

    agents: object
    ek_roots: tuple[x509.Certificate, ...]
    ek_intermediates: tuple[x509.Certificate, ...]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    random_bytes: Callable[[int], bytes] = os.urandom


class NonceBook:
    """Single-use nonces bound to a host (the store's nonce table, in memory)."""

    def __init__(self) -> None:
        self._open: dict[bytes, str] = {}

    def issue(self, host: str) -> bytes:
        nonce = os.urandom(32)
        self._open[nonce] = host
        return nonce

    def consume(self, host: str, nonce: bytes) -> None:
        if self._open.pop(nonce, None) != host:
            raise NonceError(f"the nonce was not issued for host '{host}' or was used already")


@dataclass
class Enrolled:
    """A started host and the identity registration proved for it."""

    host: SimHost
    proven: ProvenIdentity

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def url(self) -> str:
        return self.host.agent_url  # changes when the agent restarts

    @property
    def ak(self) -> TpmPublic:
        return parse_public(self.proven.identity.ak_public)

    @property
    def qualified_signer(self) -> bytes:
        return self.proven.identity.qualified_signer


class Fleet:
    """The module's cluster: hosts are started and registered on first use."""

    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self.client = SoapAgentClient(timeout=20.0, max_response_bytes=8 << 20)
        self.roots = tuple(load_certificates(cluster.ca_root_cert.read_bytes()))
        self.intermediates = tuple(load_certificates(cluster.ca_intermediate_cert.read_bytes()))
        self._enrolled: dict[str, Enrolled] = {}
        self._lock = threading.Lock()

    def context(self, agents: object | None = None, **kw: object) -> RegistrationContext:
        args: dict[str, object] = {
            "agents": agents or self.client,
            "ek_roots": self.roots,
            "ek_intermediates": self.intermediates,
        }
        args.update(kw)
        return RegistrationContext(**args)  # type: ignore[arg-type]

    def start(self, *names: str) -> None:
        """Start the named hosts that are not running yet, two at a time."""
        missing = [SPECS[n] for n in names if n not in self.cluster.hosts]
        if missing:
            self.cluster.start_hosts(missing, parallel=2)

    def __getitem__(self, name: str) -> Enrolled:
        with self._lock:
            if name not in self._enrolled:
                self.start(name)
                host = self.cluster.host(name)
                proven = prove_identity(self.context(), host.agent_url)
                self._enrolled[name] = Enrolled(host, proven)
            return self._enrolled[name]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with SimCluster(tmp_path_factory.mktemp("verify-swtpm"), agent_log_level="WARNING") as c:
        f = Fleet(c)
        f.start("good", "spare")  # needed by almost every test: start them together
        yield f


def fetch(fleet: Fleet, who: Enrolled, selection: PcrSelection, nonce: bytes) -> Evidence:
    """What the server pulls from an agent: a quote with ``nonce`` and the event log."""
    q = fleet.client.quote(who.url, nonce, selection)
    log = fleet.client.event_log(who.url)
    return Evidence(QuoteEvidence(q.attest, q.signature, q.raw_pcrs), log)


def judge(
    who: Enrolled,
    evidence: Evidence,
    nonce: bytes,
    policy: Policy,
    whitelists: tuple[Whitelist, ...],
    *,
    previous: QuoteState | None = None,
    qualified_signer: bytes | None = None,
) -> Appraisal:
    """``appraise`` with what the server knows about ``who`` (its registered AK)."""
    inp = AppraisalInput(
        host=who.name,
        ak=who.ak,
        nonce=nonce,
        policy=policy,
        whitelists=whitelists,
        now=datetime.now(UTC),
        previous=previous,
        qualified_signer=who.qualified_signer if qualified_signer is None else qualified_signer,
    )
    return appraise(evidence, inp)


def attest(
    fleet: Fleet, who: Enrolled, policy: Policy, whitelists: tuple[Whitelist, ...], **kw: object
) -> tuple[Appraisal, Evidence, bytes]:
    """Fresh nonce, fetch, appraise (what the server's AttestHost does)."""
    nonce = os.urandom(32)
    evidence = fetch(fleet, who, required_selection(policy, whitelists), nonce)
    return judge(who, evidence, nonce, policy, whitelists, **kw), evidence, nonce  # type: ignore[arg-type]


def golden(
    fleet: Fleet,
    who: Enrolled,
    *,
    name: str = "golden",
    banks: tuple[str, ...] = ("sha256",),
    kinds: tuple[EntryKind, ...] = (EntryKind.PCR, EntryKind.EVENT),
) -> Whitelist:
    """Capture a whitelist from ``who``'s own verified quote and replayed log (PCR 0-7)."""
    selection = PcrSelection.from_mapping(dict.fromkeys(banks, FIRMWARE_PCRS))
    nonce = os.urandom(32)
    q = fleet.client.quote(who.url, nonce, selection)
    verified = verify_quote(
        QuoteEvidence(q.attest, q.signature, q.raw_pcrs),
        who.ak,
        QuoteExpectations(nonce=nonce, required=selection, qualified_signer=who.qualified_signer),
    )
    log = appraise_event_log(fleet.client.event_log(who.url), verified.pcrs, banks)
    assert log.ok, [c.reason for c in log.checks if c.status is CheckStatus.FAIL]
    entries: set[WhitelistEntry] = set()
    for bank in banks:
        for pcr in FIRMWARE_PCRS:
            if EntryKind.PCR in kinds:
                entries.add(WhitelistEntry(EntryKind.PCR, bank, pcr, verified.pcrs[bank][pcr]))
            events = log.trusted_events(bank, pcr)
            assert events is not None
            if EntryKind.EVENT in kinds:
                entries.update(
                    WhitelistEntry(EntryKind.EVENT, bank, pcr, e.digests[bank]) for e in events
                )
    return Whitelist(name=name, version=1, entries=tuple(sorted(entries)), source_host=who.name)


def policy_of(*wls: Whitelist, banks: tuple[str, ...] = ("sha256",)) -> Policy:
    return Policy(
        name="p",
        version=1,
        combine=Combine.ALL_OF,
        whitelists=tuple(WhitelistRef(w.name, w.version) for w in wls),
        banks=banks,
    )


def failing(report: TrustReport) -> set[str]:
    """Ids of the checks that failed; a report with an ERROR check is not what we test here."""
    assert not [c for c in report.checks if c.status is CheckStatus.ERROR], report.checks
    return {c.id for c in report.checks if c.status is CheckStatus.FAIL}


def trusted(report: TrustReport) -> bool:
    assert report.status is TrustStatus.TRUSTED, [
        f"{c.id}: {c.reason}" for c in report.failures()
    ]
    return True


@pytest.fixture(scope="module")
def good(fleet: Fleet) -> Enrolled:
    return fleet["good"]


@pytest.fixture(scope="module")
def spare(fleet: Fleet) -> Enrolled:
    return fleet["spare"]


@pytest.fixture(scope="module")
def reference(fleet: Fleet, good: Enrolled) -> tuple[Policy, tuple[Whitelist, ...]]:
    """Policy + golden whitelist (PCR values and events of PCR 0-7, sha256) of ``good``."""
    wl = golden(fleet, good)
    return policy_of(wl), (wl,)


# --------------------------------------------------------------------------
# Registration: identity, EK chain, AK, credential activation, first quote
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["good", "rsa"])
def test_registration_binds_the_ak_to_a_certified_ek(fleet: Fleet, name: str) -> None:
    who = fleet[name]
    identity = who.proven.identity
    ak = parse_public(identity.ak_public)
    assert identity.ak_name == ak.name()
    check_ak(ak, KeyRules())
    assert who.proven.ek_type in ("rsa", "ecc")
    assert identity.qualified_signer[:2] == ak.name()[:2]
    # the EK that was activated is the certified one
    ident = fleet.client.identity(who.url)
    ek = next(e for e in ident.eks if e.key_type == who.proven.ek_type)
    assert identity.ek_public == ek.public and identity.ek_certificate == ek.certificate
    chain = validate_ek_certificate(
        ek.certificate, parse_public(ek.public), roots=fleet.roots,
        intermediates=fleet.intermediates, now=datetime.now(UTC),
    )
    assert chain.certificates[-1] == fleet.roots[0]
    assert len(chain.certificates) == 3  # leaf, intermediate, root
    assert who.proven.quote.state.reset_count >= 0


class ReplayingAgent:
    """An agent (a man in the middle) that answers ActivateCredential with an old answer.

    Keyword options of the agent port (e.g. a TLS pin) are passed through.
    """

    def __init__(self, inner: SoapAgentClient, old_answer: bytes) -> None:
        self.inner, self.old_answer = inner, old_answer

    def identity(self, url: str, **kw: Any) -> AgentIdentity:
        return self.inner.identity(url, **kw)

    def activate_credential(
        self, url: str, key_type: str, blob: bytes, secret: bytes, **kw: Any
    ) -> bytes:
        self.inner.activate_credential(url, key_type, blob, secret, **kw)  # the TPM decrypts it
        return self.old_answer

    def quote(self, url: str, nonce: bytes, selection: PcrSelection, **kw: Any) -> AgentQuote:
        return self.inner.quote(url, nonce, selection, **kw)


class LyingAgent(ReplayingAgent):
    """An agent that reports another TPM's EKs or AK (``swap``) with its own TPM behind it."""

    def __init__(self, inner: SoapAgentClient, other: AgentIdentity, swap: str) -> None:
        super().__init__(inner, b"")
        self.other, self.swap = other, swap

    def identity(self, url: str, **kw: Any) -> AgentIdentity:
        own = self.inner.identity(url, **kw)
        if self.swap == "ek":
            return replace(own, eks=self.other.eks)
        if self.swap == "ak":
            return replace(own, ak_public=self.other.ak_public, ak_name=self.other.ak_name)
        return replace(own, ak_name=self.other.ak_name)  # "ak_name": name of another key

    def activate_credential(
        self, url: str, key_type: str, blob: bytes, secret: bytes, **kw: Any
    ) -> bytes:
        return self.inner.activate_credential(url, key_type, blob, secret, **kw)


def test_activation_answer_must_be_this_secret(fleet: Fleet, good: Enrolled) -> None:
    # positive twin: the honest agent returns the secret (registration of ``good`` did that)
    ctx = fleet.context()
    assert prove_identity(ctx, good.url).identity.ak_name == good.proven.identity.ak_name
    # an answer from an earlier activation is refused
    old = fleet.client.activate_credential(
        good.url, good.proven.ek_type,
        *make_credential(parse_public(good.proven.identity.ek_public), good.ak.name(),
                         b"an earlier secret".ljust(32, b"."), random_bytes=os.urandom)
    )
    assert old == b"an earlier secret".ljust(32, b".")
    with pytest.raises(ActivationError):
        prove_identity(fleet.context(ReplayingAgent(fleet.client, old)), good.url)


@pytest.mark.parametrize("ek_type", ["rsa", "ecc"])
def test_credential_for_another_tpms_ek_or_ak_is_rejected_by_the_tpm(
    fleet: Fleet, good: Enrolled, spare: Enrolled, ek_type: str
) -> None:
    own = {e.key_type: parse_public(e.public) for e in fleet.client.identity(good.url).eks}
    other = {e.key_type: parse_public(e.public) for e in fleet.client.identity(spare.url).eks}
    secret = os.urandom(32)
    # positive twin: this TPM's EK and AK name
    blob, enc = make_credential(own[ek_type], good.ak.name(), secret, random_bytes=os.urandom)
    assert fleet.client.activate_credential(good.url, ek_type, blob, enc) == secret
    # another TPM's EK: this TPM cannot recover the seed
    blob, enc = make_credential(other[ek_type], good.ak.name(), secret, random_bytes=os.urandom)
    with pytest.raises(AgentFaultError) as err:
        fleet.client.activate_credential(good.url, ek_type, blob, enc)
    assert err.value.agent_code == "Client.CredentialRejected"
    # this TPM's EK, but the name of an AK that lives in another TPM
    blob, enc = make_credential(own[ek_type], spare.ak.name(), secret, random_bytes=os.urandom)
    with pytest.raises(AgentFaultError) as err:
        fleet.client.activate_credential(good.url, ek_type, blob, enc)
    assert err.value.agent_code == "Client.CredentialRejected"


@pytest.mark.parametrize("swap", ["ek", "ak"])
def test_registration_refuses_an_identity_assembled_from_two_tpms(
    fleet: Fleet, good: Enrolled, spare: Enrolled, swap: str
) -> None:
    assert prove_identity(fleet.context(), good.url).ek_type  # positive twin
    liar = LyingAgent(fleet.client, fleet.client.identity(spare.url), swap)
    with pytest.raises(ActivationError) as err:
        prove_identity(fleet.context(liar), good.url)
    assert "Client.CredentialRejected" in err.value.message


def test_registration_refuses_an_ak_name_that_is_not_its_public(
    fleet: Fleet, good: Enrolled, spare: Enrolled
) -> None:
    liar = LyingAgent(fleet.client, fleet.client.identity(spare.url), "ak_name")
    with pytest.raises(IdentityError) as err:
        prove_identity(fleet.context(liar), good.url)
    assert type(err.value) is IdentityError
    assert "name" in err.value.message


def _impostor_root(real: x509.Certificate) -> x509.Certificate:
    """A self-signed CA with the real root's subject but another key."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(real.subject)
        .issuer_name(real.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize("anchors", ["no root", "impostor root", "no intermediate"])
def test_ek_certificate_must_chain_to_the_configured_root(
    fleet: Fleet, good: Enrolled, anchors: str
) -> None:
    assert prove_identity(fleet.context(), good.url).ek_type  # positive twin
    if anchors == "no root":
        ctx = fleet.context(ek_roots=())
    elif anchors == "impostor root":
        ctx = fleet.context(ek_roots=(_impostor_root(fleet.roots[0]),))
    else:
        ctx = fleet.context(ek_intermediates=())
    with pytest.raises(EkCertificateError):
        prove_identity(ctx, good.url)


def test_ek_certificate_of_one_ek_does_not_certify_the_other(fleet: Fleet, good: Enrolled) -> None:
    eks = {e.key_type: e for e in fleet.client.identity(good.url).eks}
    kw = {"roots": fleet.roots, "intermediates": fleet.intermediates, "now": datetime.now(UTC)}
    for kind in ("rsa", "ecc"):  # positive twins
        validate_ek_certificate(eks[kind].certificate, parse_public(eks[kind].public), **kw)  # type: ignore[arg-type]
    with pytest.raises(EkCertificateError):
        validate_ek_certificate(eks["rsa"].certificate, parse_public(eks["ecc"].public), **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Known-good hosts are TRUSTED
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "banks"),
    [("good", ("sha256",)), ("good", ("sha1", "sha256", "sha384")), ("rsa", ("sha256",))],
)
def test_known_good_host_is_trusted_against_its_own_golden_values(
    fleet: Fleet, name: str, banks: tuple[str, ...]
) -> None:
    who = fleet[name]
    wl = golden(fleet, who, banks=banks)
    pol = policy_of(wl, banks=banks)
    result, evidence, _ = attest(fleet, who, pol, (wl,))
    report = result.report
    assert trusted(report)
    assert {c.status for c in report.checks} <= {CheckStatus.PASS, CheckStatus.INFO}
    assert {"quote", "eventlog", "whitelist:golden"} <= set(report.components())
    assert result.quote is not None
    for bank in banks:
        assert set(report.pcrs[bank]) == set(FIRMWARE_PCRS)
        assert report.pcrs[bank] == evidence.quote.raw_pcrs[bank]
        replayed = [c for c in report.checks if c.id == "eventlog.replay" and c.bank == bank]
        # one folded PASS check says every firmware PCR replayed
        assert [c.status for c in replayed] == [CheckStatus.PASS]
        assert replayed[0].reason.startswith(
            f"PCRs {min(FIRMWARE_PCRS)}-{max(FIRMWARE_PCRS)} ({bank}) replay"
        )
    assert report.reset_count == result.quote.state.reset_count
    assert report.event_log_sha256 is not None


def test_golden_values_of_one_log_do_not_fit_another(
    fleet: Fleet, reference: tuple[Policy, tuple[Whitelist, ...]]
) -> None:
    pol, wls = reference
    assert trusted(attest(fleet, fleet["good"], pol, wls)[0].report)  # positive twin
    report = attest(fleet, fleet["rsa"], pol, wls)[0].report
    assert report.status is TrustStatus.UNTRUSTED
    assert failing(report) == {"whitelist.pcr", "whitelist.event"}


# --------------------------------------------------------------------------
# Quote checks: break one thing, that check fails
# --------------------------------------------------------------------------


OwnHost = tuple[Enrolled, Policy, tuple[Whitelist, ...]]


@pytest.fixture(params=["good", "rsa"])
def own(request: pytest.FixtureRequest, fleet: Fleet) -> OwnHost:
    """A host with a policy of its own golden values (ECC and RSA AK)."""
    who = fleet[request.param]
    wl = golden(fleet, who)
    return who, policy_of(wl), (wl,)


def _with_quote(evidence: Evidence, **kw: object) -> Evidence:
    return replace(evidence, quote=replace(evidence.quote, **kw))


def test_bit_flipped_signature_fails_quote_signature(fleet: Fleet, own: OwnHost) -> None:
    who, pol, wls = own
    result, evidence, nonce = attest(fleet, who, pol, wls)
    assert trusted(result.report)
    sig = bytearray(evidence.quote.signature)
    sig[-3] ^= 0x10
    report = judge(who, _with_quote(evidence, signature=bytes(sig)), nonce, pol, wls).report
    assert report.status is TrustStatus.UNTRUSTED
    assert failing(report) == {"quote.signature"}
    assert report.pcrs == {}


def test_bit_flipped_attest_fails_quote_signature(fleet: Fleet, own: OwnHost) -> None:
    who, pol, wls = own
    result, evidence, nonce = attest(fleet, who, pol, wls)
    assert trusted(result.report)
    attest_bytes = bytearray(evidence.quote.attest)
    attest_bytes[-1] ^= 0x01  # last byte of pcrDigest
    report = judge(who, _with_quote(evidence, attest=bytes(attest_bytes)), nonce, pol, wls).report
    assert report.status is TrustStatus.UNTRUSTED
    # the signature no longer covers it, and pcrDigest no longer matches the values
    assert failing(report) == {"quote.signature", "quote.pcr_digest"}


def test_quote_for_another_nonce_fails_quote_nonce(fleet: Fleet, own: OwnHost) -> None:
    who, pol, wls = own
    theirs, ours = os.urandom(32), os.urandom(32)
    evidence = fetch(fleet, who, required_selection(pol, wls), theirs)
    assert trusted(judge(who, evidence, theirs, pol, wls).report)
    report = judge(who, evidence, ours, pol, wls).report
    assert report.status is TrustStatus.UNTRUSTED
    assert failing(report) == {"quote.nonce"}


def test_reused_nonce_is_refused_and_an_old_quote_cannot_answer_a_new_one(
    fleet: Fleet, good: Enrolled, reference: tuple[Policy, tuple[Whitelist, ...]]
) -> None:
    pol, wls = reference
    book = NonceBook()
    selection = required_selection(pol, wls)
    first = book.issue(good.name)
    old = fetch(fleet, good, selection, first)
    book.consume(good.name, first)
    assert trusted(judge(good, old, first, pol, wls).report)
    # the same nonce a second time: the registry refuses it
    with pytest.raises(NonceError):
        book.consume(good.name, first)
    # the server's next nonce cannot be answered with the old quote ...
    second = book.issue(good.name)
    report = judge(good, old, second, pol, wls).report
    assert report.status is TrustStatus.UNTRUSTED
    assert failing(report) == {"quote.nonce"}
    # ... only with a fresh one (positive twin)
    fresh = fetch(fleet, good, selection, second)
    book.consume(good.name, second)
    assert trusted(judge(good, fresh, second, pol, wls).report)
    # and a nonce issued for another host is not this host's
    third = book.issue("spare")
    with pytest.raises(NonceError):
        book.consume(good.name, third)


@pytest.mark.parametrize("recorded", [True, False])
def test_quote_from_another_hosts_ak_fails_quote_signature(
    fleet: Fleet,
    good: Enrolled,
    spare: Enrolled,
    reference: tuple[Policy, tuple[Whitelist, ...]],
    recorded: bool,
) -> None:
    pol, wls = reference
    nonce = os.urandom(32)
    evidence = fetch(fleet, spare, required_selection(pol, wls), nonce)  # same log, other TPM
    assert trusted(judge(spare, evidence, nonce, pol, wls).report)  # with its own AK
    report = judge(good, evidence, nonce, pol, wls,
                   qualified_signer=None if recorded else b"").report
    assert report.status is TrustStatus.UNTRUSTED
    expected = {"quote.signature", "quote.qualified_signer"} if recorded else {"quote.signature"}
    assert failing(report) == expected


def _drop(pcrs: dict[str, dict[int, bytes]]) -> None:
    del pcrs["sha256"][4]


def _add(pcrs: dict[str, dict[int, bytes]]) -> None:
    pcrs["sha256"][16] = bytes(32)


def _add_bank(pcrs: dict[str, dict[int, bytes]]) -> None:
    pcrs["sha1"] = {0: bytes(20)}


def _alter(pcrs: dict[str, dict[int, bytes]]) -> None:
    pcrs["sha256"][4] = bytes(b ^ 0xFF for b in pcrs["sha256"][4])


def _resize(pcrs: dict[str, dict[int, bytes]]) -> None:
    pcrs["sha256"][4] = pcrs["sha256"][4][:20]


@pytest.mark.parametrize(
    ("mutate", "check"),
    [
        (_drop, "quote.pcr_selection"),
        (_add, "quote.pcr_selection"),
        (_add_bank, "quote.pcr_selection"),
        (_resize, "quote.pcr_selection"),
        (_alter, "quote.pcr_digest"),
    ],
)
def test_reported_values_must_be_the_quoted_ones(
    fleet: Fleet, own: OwnHost, mutate: Callable[[dict[str, dict[int, bytes]]], None], check: str
) -> None:
    who, pol, wls = own
    result, evidence, nonce = attest(fleet, who, pol, wls)
    assert trusted(result.report)
    pcrs = {bank: dict(values) for bank, values in evidence.quote.raw_pcrs.items()}
    mutate(pcrs)
    report = judge(who, _with_quote(evidence, raw_pcrs=pcrs), nonce, pol, wls).report
    assert report.status is TrustStatus.UNTRUSTED
    assert failing(report) == {check}
    assert report.pcrs == {}


def test_quote_must_cover_every_pcr_the_policy_needs(
    fleet: Fleet, good: Enrolled, reference: tuple[Policy, tuple[Whitelist, ...]]
) -> None:
    pol, wls = reference
    nonce = os.urandom(32)
    full = required_selection(pol, wls)
    assert trusted(judge(good, fetch(fleet, good, full, nonce), nonce, pol, wls).report)
    nonce = os.urandom(32)
    short = PcrSelection.from_mapping({"sha256": [p for p in FIRMWARE_PCRS if p != 7]})
    report = judge(good, fetch(fleet, good, short, nonce), nonce, pol, wls).report
    assert report.status is TrustStatus.UNTRUSTED
    assert failing(report) == {"quote.pcr_selection"}
    assert "sha256:7" in next(c.reason for c in report.checks if c.status is CheckStatus.FAIL)


# --------------------------------------------------------------------------
# Measurements: PCR changed after boot, tampered logs
# --------------------------------------------------------------------------


def test_pcr_extended_after_the_golden_capture_is_untrusted(
    fleet: Fleet, spare: Enrolled, reference: tuple[Policy, tuple[Whitelist, ...]]
) -> None:
    pol, wls = reference
    host = spare.host
    assert trusted(attest(fleet, spare, pol, wls)[0].report)  # positive twin (good's golden)
    host.stop_agent()  # a swtpm serves one connection at a time
    try:
        with TpmAccess(host.swtpm.tcti) as tpm:
            tpm.pcr_extend(4, {b: HASH_BY_NAME[b].digest(b"late load") for b in host.plan.banks})
        host.start_agent()
        report = attest(fleet, spare, pol, wls)[0].report
        assert report.status is TrustStatus.UNTRUSTED
        assert failing(report) == {"eventlog.replay", "whitelist.pcr", "whitelist.event"}
        assert {c.pcr for c in report.failures()} == {4}
        replay = next(c for c in report.failures() if c.id == "eventlog.replay")
        assert replay.actual != replay.expected
    finally:
        fleet.cluster.restart_host(host.name)  # a fresh boot restores the PCRs
    assert trusted(attest(fleet, spare, pol, wls)[0].report)


def test_tampered_boot_event_is_named_by_the_whitelist(
    fleet: Fleet, good: Enrolled, reference: tuple[Policy, tuple[Whitelist, ...]]
) -> None:
    events_only = golden(fleet, good, kinds=(EntryKind.EVENT,))
    pol = policy_of(events_only)
    assert trusted(attest(fleet, good, pol, (events_only,))[0].report)  # positive twin
    evil = fleet["evil-event"]
    report = attest(fleet, evil, pol, (events_only,))[0].report
    assert report.status is TrustStatus.UNTRUSTED
    assert failing(report) == {"whitelist.event"}
    [bad] = report.failures()
    assert bad.pcr == 4 and bad.event_index == evil.host.plan.tampered_event
    assert f"event {bad.event_index} EV_EFI_BOOT_SERVICES_APPLICATION" in bad.reason
    # the log replays: the quote vouches for the tampered event, and says it is unknown
    replays = [c for c in report.checks if c.id == "eventlog.replay"]
    assert replays and all(c.status is CheckStatus.PASS for c in replays)
    # with golden PCR values as well, PCR 4's final value is refused too
    pol, wls = reference
    report = attest(fleet, evil, pol, wls)[0].report
    assert failing(report) == {"whitelist.event", "whitelist.pcr"}
    assert {c.pcr for c in report.failures()} == {4}


def test_log_that_does_not_replay_to_the_quote_is_untrusted(
    fleet: Fleet, good: Enrolled
) -> None:
    wl = golden(fleet, good, kinds=(EntryKind.EVENT,))
    pol = policy_of(wl)
    assert trusted(attest(fleet, good, pol, (wl,))[0].report)  # positive twin
    evil = fleet["evil-pcr"]
    report = attest(fleet, evil, pol, (wl,))[0].report
    assert report.status is TrustStatus.UNTRUSTED
    assert failing(report) == {"eventlog.replay", "whitelist.event"}
    assert {c.pcr for c in report.failures()} == {4}
    replay = next(c for c in report.failures() if c.id == "eventlog.replay")
    assert f"{evil.host.plan.tampered_event} EV_EFI_BOOT_SERVICES_APPLICATION" in replay.reason
    vouch = next(c for c in report.failures() if c.id == "whitelist.event")
    assert "does not vouch" in vouch.reason


# --------------------------------------------------------------------------
# Reboots and counters
# --------------------------------------------------------------------------


def test_reboot_is_reported_and_counters_cannot_go_back(
    fleet: Fleet, spare: Enrolled, reference: tuple[Policy, tuple[Whitelist, ...]]
) -> None:
    pol, wls = reference
    before = attest(fleet, spare, pol, wls)[0]
    assert trusted(before.report) and before.quote is not None
    first = before.quote.state
    fleet.cluster.restart_host(spare.name)
    after, evidence, nonce = attest(fleet, spare, pol, wls, previous=first)
    report = after.report
    assert trusted(report)
    assert report.reboot_detected is True
    assert report.reset_count == first.reset_count + 1
    notes = [c for c in report.checks if c.id == "quote.reboot"]
    assert [c.status for c in notes] == [CheckStatus.INFO]
    assert f"resetCount {first.reset_count} -> {first.reset_count + 1}" in notes[0].reason
    assert after.quote is not None
    now = after.quote.state
    # positive twin without a reboot: the state just recorded as previous
    same = judge(spare, evidence, nonce, pol, wls, previous=replace(now, clock=now.clock - 1))
    assert trusted(same.report) and not same.report.reboot_detected
    for newer in (
        replace(now, reset_count=now.reset_count + 1),
        replace(now, restart_count=now.restart_count + 1),
        replace(now, clock=now.clock + 60_000),
    ):
        stale = judge(spare, evidence, nonce, pol, wls, previous=newer).report
        assert stale.status is TrustStatus.UNTRUSTED
        assert failing(stale) == {"quote.clock"}


# --------------------------------------------------------------------------
# Agent down: UNKNOWN, never TRUSTED
# --------------------------------------------------------------------------


def attest_or_unknown(
    fleet: Fleet, who: Enrolled, pol: Policy, wls: tuple[Whitelist, ...]
) -> TrustReport:
    """The server's AttestHost flow: agent failures become an UNKNOWN report."""
    nonce = os.urandom(32)
    try:
        evidence = fetch(fleet, who, required_selection(pol, wls), nonce)
    except AGENT_ERRORS as exc:
        return unknown_report(who.name, "agent.evidence", exc.message, datetime.now(UTC),
                              policy=pol)
    return judge(who, evidence, nonce, pol, wls).report


def test_agent_down_is_unknown_never_trusted(
    fleet: Fleet, spare: Enrolled, reference: tuple[Policy, tuple[Whitelist, ...]]
) -> None:
    pol, wls = reference
    assert trusted(attest_or_unknown(fleet, spare, pol, wls))  # positive twin
    url = spare.url
    spare.host.kill_agent()
    try:
        with pytest.raises(AgentUnreachableError):
            fleet.client.quote(url, os.urandom(32), required_selection(pol, wls))
        with pytest.raises(AgentUnreachableError):
            fleet.client.event_log(url)
        report = attest_or_unknown(fleet, spare, pol, wls)
        assert report.status is TrustStatus.UNKNOWN
        assert [(c.id, c.status) for c in report.checks] == [("agent.evidence", CheckStatus.ERROR)]
        assert report.pcrs == {}
    finally:
        spare.host.start_agent()
    assert trusted(attest_or_unknown(fleet, spare, pol, wls))
