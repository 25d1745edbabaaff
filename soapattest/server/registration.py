"""Host registration: bind a name to a TPM identity the server has proven.

1. Validate the request; the name must be free (re-registration with another
   identity is refused: identity takeover goes through :func:`reenroll_host`,
   an explicit, audited operation).
2. Fetch the identity from the host's agent.
3. Validate an EK certificate against the configured manufacturer roots and
   bind it to the EK public the TPM reported.
4. Check the AK: restricted signing key of an accepted kind; its name is the
   hash of its public area.
5. Credential activation: MakeCredential(EK, AK name, random secret); only the
   TPM holding both the EK and the AK can return the secret.
6. A first quote with a fresh nonce verifies with the AK: records the
   qualifiedSigner and the clock baseline.
7. Store host + identity + clock state + audit record in one transaction; the
   TPM (its EK or AK) must not be bound to another active host already, else an
   agent relaying to a trusted host's agent would borrow that host's trust.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from soapattest.errors import (
    ActivationError,
    AgentFaultError,
    EkCertificateError,
    HostExistsError,
    IdentityError,
    IdentityInUseError,
    InvalidArgumentError,
    TpmFormatError,
)
from soapattest.model import Host, HostIdentity
from soapattest.security.tls import normalize_fingerprint
from soapattest.server import validate
from soapattest.server.agents import AgentIdentity, EkInfo
from soapattest.server.audit import audited
from soapattest.server.context import ServerContext
from soapattest.store import Tx
from soapattest.tpm.credential import make_credential
from soapattest.tpm.pcr import PcrSelection
from soapattest.tpm.public import TpmPublic, parse_public
from soapattest.verify.ekcert import validate_ek_certificate
from soapattest.verify.identity import KeyRules, check_ak
from soapattest.verify.quote import QuoteEvidence, QuoteExpectations, VerifiedQuote, verify_quote

log = logging.getLogger("soapattest.server.registration")
SECRET_BYTES = 32
NONCE_BYTES = 32
BASELINE_PCRS = (0, 1, 2, 3, 4, 5, 6, 7)


@dataclass(frozen=True, slots=True)
class ProvenIdentity:
    """An identity that passed steps 3-6."""

    identity: HostIdentity
    ek_type: str
    quote: VerifiedQuote


def _choose_ek(ctx: ServerContext, ident: AgentIdentity) -> tuple[EkInfo, TpmPublic]:
    # 3. The first EK whose certificate chains to a configured root.
    reasons: list[str] = []
    for ek in ident.eks:
        try:
            public = parse_public(ek.public)
            validate_ek_certificate(
                ek.certificate,
                public,
                roots=ctx.ek_roots,
                intermediates=ctx.ek_intermediates,
                now=ctx.clock(),
            )
        except (EkCertificateError, TpmFormatError) as exc:
            reasons.append(f"{ek.key_type} EK: {exc.message}")
            continue
        return ek, public
    raise EkCertificateError("no EK certificate is acceptable: " + "; ".join(reasons))


def _check_ak(ident: AgentIdentity) -> TpmPublic:
    # 4. AK kind and name.
    try:
        ak = parse_public(ident.ak_public)
    except TpmFormatError as exc:
        raise IdentityError(f"the AK public area does not parse: {exc.message}") from exc
    check_ak(ak, KeyRules())
    if not hmac.compare_digest(ak.name(), ident.ak_name):
        raise IdentityError("the AK name the agent reported is not the name of its public area")
    return ak


def _baseline_selection(banks: tuple[str, ...]) -> PcrSelection:
    bank = "sha256" if "sha256" in banks or not banks else banks[0]
    return PcrSelection.from_mapping({bank: BASELINE_PCRS})


def agent_pin(ctx: ServerContext, url: str, given: str = "") -> str:
    """The TLS pin to record for the agent at ``url`` ("" when none applies).

    http:// agents have none (refused when ``[agents] require_tls``); an
    operator-supplied fingerprint wins; with ``[agents] agent_ca`` the CA
    verifies agents and nothing is pinned; otherwise the certificate the agent
    presents now is pinned (trust on first use; the registration's credential
    activation then proves the TPM behind it).
    """
    if not url.startswith("https://"):
        if ctx.config.agent_require_tls:
            raise InvalidArgumentError(
                "agent_url must be https:// ([agents] require_tls)", argument="agent_url"
            )
        if given:
            raise InvalidArgumentError(
                "a TLS fingerprint was given for an http:// agent URL", argument="agent_url"
            )
        return ""
    if given:
        try:
            return normalize_fingerprint(given)
        except ValueError as exc:
            raise InvalidArgumentError(
                f"agent TLS fingerprint: {exc}", argument="agent_tls_fingerprint"
            ) from None
    if ctx.config.agent_ca is not None:
        return ""
    return ctx.agents.fetch_fingerprint(url, unsafe_trust_on_first_use=True)


def prove_identity(ctx: ServerContext, url: str, pin: str = "") -> ProvenIdentity:
    """Steps 2-6 against the agent at ``url``; raises IdentityError subclasses or agent errors."""
    tls_pin = pin or None
    ident = ctx.agents.identity(url, pin=tls_pin)  # 2.
    ek_info, ek = _choose_ek(ctx, ident)  # 3.
    ak = _check_ak(ident)  # 4.
    # 5. Credential activation.
    secret = ctx.random_bytes(SECRET_BYTES)
    blob, encrypted = make_credential(ek, ak.name(), secret, random_bytes=ctx.random_bytes)
    try:
        answer = ctx.agents.activate_credential(
            url, ek_info.key_type, blob, encrypted, pin=tls_pin
        )
    except AgentFaultError as exc:
        if exc.agent_code != "Client.CredentialRejected":
            raise
        # The TPM could not unwrap the credential: the AK does not live beside this EK.
        raise ActivationError(
            f"credential activation refused by the TPM (the AK is not bound to this EK): "
            f"{exc.message}"
        ) from exc
    if not hmac.compare_digest(answer, secret):
        raise ActivationError("credential activation returned the wrong secret")
    # 6. A first quote, verified with the now-trusted AK.
    nonce = ctx.random_bytes(NONCE_BYTES)
    selection = _baseline_selection(ident.banks)
    q = ctx.agents.quote(url, nonce, selection, pin=tls_pin)
    verified = verify_quote(
        QuoteEvidence(q.attest, q.signature, q.raw_pcrs),
        ak,
        QuoteExpectations(nonce=nonce, required=selection),
    )
    identity = HostIdentity(
        ek_public=ek_info.public,
        ek_certificate=ek_info.certificate,
        ak_public=ident.ak_public,
        ak_name=ak.name(),
        activated_at=ctx.clock(),
        qualified_signer=verified.attest.qualified_signer,
        agent_tls_pin=pin,
    )
    return ProvenIdentity(identity=identity, ek_type=ek_info.key_type, quote=verified)


def _check_tpm_unbound(tx: Tx, name: str, identity: HostIdentity) -> None:
    # 7. One TPM, one host: refuse an EK or AK another active host already has.
    others = [
        n for n in tx.hosts.holders_of(identity.ek_public, identity.ak_name) if n != name
    ]
    if others:
        raise IdentityInUseError(
            f"this TPM is already registered as host '{others[0]}' (same EK or AK); delete "
            "that host first if the machine was renamed",
            host=others[0],
        )


def register_host(
    ctx: ServerContext,
    actor: str,
    *,
    name: str,
    agent_url: str,
    pool: str = "",
    policy: str = "",
    labels: Mapping[str, str] | None = None,
    description: str = "",
    agent_tls_fingerprint: str = "",
) -> Host:
    """Register a host (steps 1-7). Every attempt is audited, refused ones too."""
    host = Host(
        name=validate.name(name, "name"),
        agent_url=validate.agent_url(agent_url),
        pool=validate.optional_name(pool, "pool"),
        policy=validate.optional_name(policy, "policy"),
        labels=validate.labels(labels or {}),
        description=validate.text(description, "description"),
    )
    with audited(ctx, actor, "host.register", "host", host.name, {"agent_url": agent_url}) as audit:
        with ctx.store.transaction(readonly=True) as tx:  # 1.
            if tx.hosts.find(host.name) is not None:
                raise HostExistsError(f"host '{host.name}' is already registered")
            if host.policy:
                tx.policies.get(host.policy)
        pin = agent_pin(ctx, host.agent_url, agent_tls_fingerprint)
        proven = prove_identity(ctx, host.agent_url, pin)  # 2-6.
        now = ctx.clock()
        with ctx.store.transaction() as tx:  # 7.
            _check_tpm_unbound(tx, host.name, proven.identity)
            tx.hosts.add(host, now)
            tx.hosts.set_identity(host.name, proven.identity, now)
            tx.hosts.record_quote_state(host.name, proven.quote.state)
            audit.details.update(
                ek_type=proven.ek_type,
                ak_name=proven.identity.ak_name.hex(),
                agent_tls_pin=pin or None,
            )
            audit.record(tx)
            stored = tx.hosts.get(host.name)
        log.info(
            "registered host %s (%s EK, AK %s)",
            host.name,
            proven.ek_type,
            proven.identity.ak_name.hex()[:16],
        )
        return stored


def reenroll_host(ctx: ServerContext, actor: str, name: str) -> Host:
    """Replace a host's identity after a TPM change (explicit, audited, admin only).

    The new identity must pass every registration step; the old one stays in
    the identity history.
    """
    validate.name(name, "name")
    with audited(ctx, actor, "host.reenroll", "host", name, {}) as audit:
        with ctx.store.transaction(readonly=True) as tx:
            host = tx.hosts.get(name)
        pin = agent_pin(ctx, host.agent_url)
        proven = prove_identity(ctx, host.agent_url, pin)
        now = ctx.clock()
        with ctx.store.transaction() as tx:
            _check_tpm_unbound(tx, name, proven.identity)
            tx.hosts.set_identity(name, proven.identity, now)
            tx.hosts.record_quote_state(name, proven.quote.state)
            audit.details.update(ek_type=proven.ek_type, ak_name=proven.identity.ak_name.hex())
            audit.record(tx)
            return tx.hosts.get(name)
