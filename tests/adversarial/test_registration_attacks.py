"""Registration and identity attacks against the real server and real swtpm hosts.

A hostile agent (a real HTTP server in this process) sits in front of a real
simulated host's agent and changes what it says: another AK, a wrong or
replayed credential-activation answer, an answer from another TPM; or it is
a software TPM altogether. RegisterHost must refuse each with a clear fault
and store nothing; an identity, once proven, must not be replaceable by a
second registration, and an agent that swaps its AK later gets no trust.

The identity checks themselves are tested against swtpm without a server in
``tests/integration/test_verify_swtpm.py``; here they run through gunicorn, the
SOAP service, the real agent client and the store.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from soapattest.model import CheckStatus, TrustStatus
from soapattest.tpm.constants import ObjectAttributes
from soapattest.tpm.marshal import AK_ATTRIBUTES, build_public_ecc
from soapattest.tpm.public import parse_public
from tests.adversarial.hostile_agent import (
    Answer,
    Call,
    credential_response,
    envelope_of,
    set_binary,
)
from tests.adversarial.realworld import GOLDEN, RealWorld
from tests.adversarial.soft import SoftCa, SoftHost
from tests.adversarial.support import GOOD_LOG, Lab, assert_defended
from tests.swtpm_fixture import have_swtpm

pytestmark = [
    pytest.mark.swtpm,
    pytest.mark.skipif(not have_swtpm(), reason="swtpm is not installed"),
]

OA = ObjectAttributes


def _register_twin(real: RealWorld, name: str, url: str) -> None:
    """Positive twin: the same agent, honest, registers (then the host is deleted again, so
    that its TPM is free for the attack)."""
    with real.registered(name, url):
        pass


# ---------------------------------------------------------------------- AK attributes


def _ak_with(attributes: int) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = build_public_ecc(key.public_key(), attributes)
    return public, parse_public(public).name()


AK_KINDS = {
    "not-restricted": AK_ATTRIBUTES & ~OA.RESTRICTED,
    "not-fixed-tpm": AK_ATTRIBUTES & ~OA.FIXED_TPM,
    "not-fixed-parent": AK_ATTRIBUTES & ~OA.FIXED_PARENT,
    "sign-and-decrypt": AK_ATTRIBUTES | OA.DECRYPT,
}


@pytest.mark.parametrize("kind", sorted(AK_KINDS))
def test_ak_without_restricted_or_fixed_tpm_is_refused(real: RealWorld, kind: str) -> None:
    agent = real.agent(upstream=real.url_of("adv-b"))
    _register_twin(real, f"reg-ak-twin-{kind}", agent.url)
    public, name = _ak_with(AK_KINDS[kind])

    def weak_ak(call: Call) -> Answer:
        tree = call.forward_tree()
        set_binary(tree, "ak_public", public)
        set_binary(tree, "ak_name", name)
        return envelope_of(tree)

    agent.on("GetIdentity", weak_ak)
    agent.calls.clear()
    before = real.snapshot()
    out = real.register(f"reg-ak-{kind}", agent.url)
    assert_defended(real, before, out, host=None, fault="Client.InvalidIdentity")
    assert "AK" in out.message
    assert "ActivateCredential" not in agent.calls  # refused before any activation


# ---------------------------------------------------------------------- activation


def _random_answer(real: RealWorld, call: Call) -> Answer:
    call.forward()  # the TPM decrypts it; the agent then lies
    return credential_response(os.urandom(32))


def _other_tpm(real: RealWorld, call: Call) -> Answer:
    return call.forward(real.url_of("adv-c"))


ACTIVATION: list[tuple[str, Callable[[RealWorld, Call], Answer], str]] = [
    ("wrong-secret", _random_answer, "Client.InvalidIdentity"),
    ("answered-by-another-tpm", _other_tpm, "Client.InvalidIdentity"),
]


@pytest.mark.parametrize(("case", "lie", "fault"), ACTIVATION, ids=[a[0] for a in ACTIVATION])
def test_credential_activation_answered_wrongly_is_refused(
    real: RealWorld, case: str, lie: Callable[[RealWorld, Call], Answer], fault: str
) -> None:
    agent = real.agent(upstream=real.url_of("adv-b"))
    _register_twin(real, f"reg-act-twin-{case}", agent.url)
    agent.on("ActivateCredential", lambda call: lie(real, call))
    before = real.snapshot()
    out = real.register(f"reg-act-{case}", agent.url)
    assert_defended(real, before, out, host=None, fault=fault)
    if case == "answered-by-another-tpm":  # the other TPM cannot unwrap the credential
        assert "Client.CredentialRejected" in out.message


def test_replayed_activation_answer_is_refused(real: RealWorld) -> None:
    agent = real.agent(upstream=real.url_of("adv-b"))
    answers: list[Answer] = []

    def record(call: Call) -> Answer:
        answer = call.forward()
        answers.append(answer)
        return answer

    agent.on("ActivateCredential", record)
    _register_twin(real, "reg-replay-twin", agent.url)  # records a genuine answer

    def replay(call: Call) -> Answer:
        call.forward()
        return answers[0]

    agent.on("ActivateCredential", replay)
    before = real.snapshot()
    out = real.register("reg-replay", agent.url)
    assert_defended(real, before, out, host=None, fault="Client.InvalidIdentity")
    assert "wrong secret" in out.message


def test_identity_assembled_from_two_tpms_is_refused(real: RealWorld) -> None:
    """adv-b's EK with adv-c's AK: no TPM holds both, so activation cannot succeed."""
    agent = real.agent(upstream=real.url_of("adv-b"))
    _register_twin(real, "reg-two-tpms-twin", agent.url)
    other = real.agent(upstream=real.url_of("adv-c"))

    def mixed(call: Call) -> Answer:
        mine = call.forward_tree()
        theirs = call.forward_tree(other.upstream)
        for local in ("ak_public", "ak_name"):
            (src,) = theirs.iter(f"{{urn:soapattest:agent:v1}}{local}")
            (dst,) = mine.iter(f"{{urn:soapattest:agent:v1}}{local}")
            dst.text = src.text
        return envelope_of(mine)

    agent.on("GetIdentity", mixed)
    before = real.snapshot()
    out = real.register("reg-two-tpms", agent.url)
    assert_defended(real, before, out, host=None, fault="Client.InvalidIdentity")
    assert "Client.CredentialRejected" in out.message


# ---------------------------------------------------------------------- takeover


def test_reregistering_a_name_with_another_tpm_is_refused(real: RealWorld) -> None:
    assert real.attest(GOLDEN).status is TrustStatus.TRUSTED  # positive twin
    hostile = real.agent(upstream=real.url_of("adv-b"))
    for url in (real.url_of("adv-b"), hostile.url):
        before = real.snapshot()
        out = real.register(GOLDEN, url)
        assert_defended(real, before, out, host=GOLDEN, fault="Client.AlreadyExists")
    assert hostile.calls == []  # refused before the server spoke to the new agent
    assert real.attest(GOLDEN).status is TrustStatus.TRUSTED


def test_agent_swapping_its_ak_after_registration_gets_no_trust(real: RealWorld) -> None:
    agent = real.agent(upstream=real.url_of("adv-c"))
    with real.registered("reg-swap", agent.url):
        assert real.attest("reg-swap").status is TrustStatus.TRUSTED  # positive twin
        agent.upstream = real.url_of("adv-b")  # the agent now answers with another TPM's AK
        before = real.snapshot()
        out = real.attest("reg-swap")
        assert_defended(real, before, out, host="reg-swap", check="quote.signature")
        assert out.has("quote.qualified_signer", CheckStatus.FAIL)
        agent.upstream = real.url_of("adv-c")
        assert real.attest("reg-swap").status is TrustStatus.TRUSTED


@pytest.mark.parametrize("order", ["same-ek-order", "ecc-ek-first"])
def test_relay_to_an_already_registered_tpm_is_refused(real: RealWorld, order: str) -> None:
    """A new host whose agent relays every call to the golden host's agent (a "cuckoo"):
    it would borrow the golden TPM's trust. A TPM (its EK or AK) that is already bound to
    an active host cannot be registered a second time."""
    relay = real.agent(upstream=real.url_of("adv-a"))
    if order == "ecc-ek-first":  # another EK of the same TPM, to dodge an EK comparison

        def ecc_first(call: Call) -> Answer:
            tree = call.forward_tree()
            eks = list(tree.iter("{urn:soapattest:agent:v1}ek"))
            parent = eks[0].getparent()
            for ek in eks:
                parent.remove(ek)
            for ek in reversed(eks):
                parent.insert(0, ek)
            return envelope_of(tree)

        relay.on("GetIdentity", ecc_first)
    before = real.snapshot()
    out = real.register(f"relay-{order}", relay.url)
    assert_defended(real, before, out, host=None, fault="Client.InvalidIdentity")
    assert GOLDEN in out.message
    # positive twin: the same relay in front of a TPM nobody registered yet
    relay.upstream = real.url_of("adv-b")
    _register_twin(real, f"relay-twin-{order}", relay.url)


# ---------------------------------------------------------------------- software TPM


@pytest.mark.parametrize("ca", ["self-made-ca", "impostor-of-the-real-root"])
def test_software_tpm_cannot_register_through_the_production_path(
    real: RealWorld, lab: Lab, ca: str
) -> None:
    """A complete software TPM (EK certificate, activation, quotes) is refused only because
    its EK certificate does not chain to a configured root (Client.InvalidIdentity)."""
    from cryptography import x509

    root = x509.load_pem_x509_certificate(real.cluster.ca_root_cert.read_bytes())
    soft_ca = SoftCa(root.subject if ca == "impostor-of-the-real-root" else None)
    soft = SoftHost(f"soft-{ca}", GOOD_LOG, ca=soft_ca)
    agent = real.agent(soft=soft)
    before = real.snapshot()
    out = real.register(soft.name, agent.url)
    assert_defended(real, before, out, host=None, fault="Client.InvalidIdentity")
    assert "EK" in out.message
    assert "ActivateCredential" not in agent.calls
    # positive twin: a server configured to trust the soft CA enrols it - the roots are
    # what keeps software TPMs out (the in-process server, never a production config)
    lab_agent = lab.agent(soft=soft)
    lab.ctx.ek_roots = (soft_ca.root,)
    try:
        resp = lab.call(
            f"<t:RegisterHost><t:name>{soft.name}</t:name><t:agent_url>{lab_agent.url}"
            "</t:agent_url></t:RegisterHost>"
        )
    finally:
        lab.ctx.ek_roots = ()
    assert resp.status == 200, resp.fault_string
    assert "ActivateCredential" in lab_agent.calls


def test_reenrolling_onto_a_tpm_bound_to_another_host_is_refused(real: RealWorld) -> None:
    """ReenrollHost proves the identity behind the host's agent URL again; a URL that now
    leads to the golden host's TPM must not move that TPM's trust to this host."""
    agent = real.agent(upstream=real.url_of("adv-b"))
    with real.registered("reenroll-victim", agent.url):
        assert real.call(real.admin.reenroll_host, "reenroll-victim").fault is None  # twin
        agent.upstream = real.url_of("adv-a")  # the golden host's TPM
        before = real.snapshot()
        out = real.call(real.admin.reenroll_host, "reenroll-victim")
        assert_defended(
            real, before, out, host="reenroll-victim", fault="Client.InvalidIdentity"
        )
        assert GOLDEN in out.message
