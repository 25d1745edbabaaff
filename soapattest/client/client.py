"""AttestationClient: the typed facade over the server's WSDL (``urn:soapattest:v1``).

One method per SOAP operation, snake_case, keyword arguments, domain values in
and out (:mod:`soapattest.model` dataclasses, or :mod:`soapattest.client.results`
where the model has no type). Every failure raises a
:class:`~soapattest.errors.SoapAttestError`: a SOAP fault as the class of its
code (``Client.UnknownHost`` -> :class:`~soapattest.errors.UnknownHostError`)
with the server's sentence, a dead or unreachable server as
:class:`~soapattest.errors.ServerUnreachableError`, an answer that is not a valid
SOAP response as :class:`~soapattest.errors.ServerResponseError`.

Example::

    with AttestationClient("https://attest.example:8443/", username="ops",
                           password=secret, verify="/etc/ssl/soapattest-ca.pem") as c:
        report = c.attest_host("web-1")
        if report.status is TrustStatus.TRUSTED: ...

A client holds one HTTP session; share it between threads only for read-mostly
use, or create one per thread (creating one is cheap: the WSDL is parsed once
per process).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType

from soapattest.client import convert as cv
from soapattest.client.connection import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    Connection,
    ConnectionSettings,
)
from soapattest.client.results import (
    HostInfo,
    HostTrust,
    Measurements,
    Page,
    PoolInfo,
    RetrievedQuote,
    TrustAssertion,
    WhitelistSummary,
)
from soapattest.model import (
    AuditRecord,
    EntryKind,
    PlacementDecision,
    Policy,
    TrustReport,
    TrustStatus,
    Whitelist,
    WhitelistEntry,
    WorkloadRequirements,
)
from soapattest.tpm.pcr import PcrSelection

DEFAULT_PAGE = 100
MAX_PAGE = 1000


class AttestationClient:
    """A client of one soapattest server.

    ``url``: the SOAP endpoint (``https://host:port/``). ``username``/``password``:
    WS-Security UsernameToken credentials, sent on every call when given
    (PasswordText over https, PasswordDigest otherwise; ``password_digest``
    forces one). ``timeout``: seconds per call. ``verify``: ``True`` (system
    CAs), a CA bundle path, or ``False`` (no TLS verification: tests only).
    ``client_cert``: PEM file (cert + key) or ``(cert, key)`` for mutual TLS.
    ``wsdl``: another WSDL location (default: the copy shipped in this package;
    the network is never used to fetch it unless you pass a URL here).
    ``trust_env``: honour proxy/netrc environment variables (off by default).
    ``max_response_bytes``: larger answers are refused (default 64 MiB).

    Raises :class:`~soapattest.errors.InvalidArgumentError` for a bad URL,
    timeout, or a user name without password.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        client_cert: str | tuple[str, str] | None = None,
        wsdl: str | None = None,
        password_digest: bool | None = None,
        trust_env: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._conn = Connection(
            ConnectionSettings(
                url=url,
                username=username,
                password=password,
                timeout=timeout,
                verify=verify,
                client_cert=client_cert,
                password_digest=password_digest,
                trust_env=trust_env,
                wsdl=wsdl,
                max_response_bytes=max_response_bytes,
            )
        )
        self._call = self._conn.call

    @property
    def url(self) -> str:
        """The endpoint this client calls."""
        return self._conn.url

    def close(self) -> None:
        """Close the HTTP session."""
        self._conn.close()

    def __enter__(self) -> AttestationClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ hosts

    def register_host(
        self,
        name: str,
        agent_url: str,
        *,
        pool: str | None = None,
        policy: str | None = None,
        labels: Mapping[str, str] | None = None,
        description: str | None = None,
        agent_tls_fingerprint: str | None = None,
    ) -> HostInfo:
        """Register a host: the server validates its EK certificate and proves its AK by
        credential activation first. ``agent_tls_fingerprint``: SHA-256 (hex) of the
        agent's TLS certificate to pin (https agents). Faults: Client.AlreadyExists,
        Client.InvalidIdentity, Client.PolicyNotFound, Server.AgentUnreachable."""
        return cv.host_in(
            self._call(
                "RegisterHost",
                name=name,
                agent_url=agent_url,
                pool=pool or None,
                policy=policy or None,
                labels=cv.labels_out(labels),
                description=description or None,
                agent_tls_fingerprint=agent_tls_fingerprint or None,
            )
        )

    def get_host(self, name: str) -> HostInfo:
        """One host. Raises UnknownHostError."""
        return cv.host_in(self._call("GetHost", name=name))

    def list_hosts(
        self, *, pool: str | None = None, offset: int = 0, limit: int = DEFAULT_PAGE
    ) -> Page[HostInfo]:
        """A page of hosts by name (``limit`` 1..1000), optionally of one pool."""
        out = self._call("ListHosts", pool=pool or None, offset=offset, limit=limit)
        return Page(tuple(cv.host_in(h) for h in out.host or ()), int(out.total), offset, limit)

    def iter_hosts(
        self, *, pool: str | None = None, page_size: int = MAX_PAGE
    ) -> Iterator[HostInfo]:
        """Every host (of ``pool``), fetched page by page."""
        offset = 0
        while True:
            page = self.list_hosts(pool=pool, offset=offset, limit=page_size)
            yield from page.items
            if not page.items or not page.has_more:
                return
            offset += len(page.items)

    def update_host(
        self,
        name: str,
        *,
        agent_url: str | None = None,
        pool: str | None = None,
        labels: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> HostInfo:
        """Change a host's agent URL, pool (``""`` removes it), labels (replaced when
        given) or description; never its TPM identity. Raises UnknownHostError."""
        return cv.host_in(
            self._call(
                "UpdateHost",
                name=name,
                agent_url=agent_url,
                pool=pool,
                labels=cv.labels_out(labels),
                replace_labels=labels is not None,
                description=description,
            )
        )

    def delete_host(self, name: str) -> bool:
        """Delete a host (its reports stay). Raises UnknownHostError."""
        return bool(self._call("DeleteHost", name=name))

    def reenroll_host(self, name: str) -> HostInfo:
        """Replace a host's TPM identity after a TPM change (every registration check
        runs again)."""
        return cv.host_in(self._call("ReenrollHost", name=name))

    def retrieve_quote(
        self,
        host: str,
        selection: Mapping[str, Iterable[int]] | PcrSelection,
        *,
        with_event_log: bool = False,
    ) -> RetrievedQuote:
        """A fresh quote over ``selection`` (bank -> PCRs) with a server nonce, verified by
        the server with the host's AK; no policy applied, no report stored."""
        mapping = dict(selection.banks) if isinstance(selection, PcrSelection) else selection
        return cv.retrieved_in(
            self._call(
                "RetrieveQuote",
                host=host,
                selection=cv.selection_out(mapping),
                with_event_log=with_event_log,
            )
        )

    def get_measurements(self, host: str) -> Measurements:
        """Verified PCR values and decoded event log of the host's newest report.
        Raises UnknownHostError, ReportNotFoundError."""
        return cv.measurements_in(self._call("GetMeasurements", host=host))

    # ------------------------------------------------------------------ attestation

    def attest_host(self, host: str) -> TrustReport:
        """Attest ``host`` now and return the stored report (UNKNOWN when its agent
        cannot be reached). Raises UnknownHostError, NoPolicyError."""
        return cv.report_in(self._call("AttestHost", host=host))

    def attest_hosts(self, hosts: Sequence[str]) -> list[HostTrust]:
        """Attest many hosts concurrently (server side); one result per host, in order."""
        return [cv.host_trust_in(t) for t in self._call("AttestHosts", host=list(hosts)) or ()]

    def poll_hosts(
        self, hosts: Sequence[str] = (), *, pool: str | None = None, max_age: int
    ) -> list[HostTrust]:
        """Current trust of ``hosts`` and/or every host of ``pool``: reports younger than
        ``max_age`` seconds are served as they are, the other hosts attested now."""
        out = self._call("PollHosts", host=list(hosts), pool=pool or None, max_age=max_age)
        return [cv.host_trust_in(t) for t in out or ()]

    def issue_nonce(self, host: str) -> bytes:
        """A single-use nonce bound to ``host`` for a quote you fetch yourself."""
        return bytes(self._call("IssueNonce", host=host))

    def verify_quote(
        self,
        host: str,
        nonce: bytes,
        attest: bytes,
        signature: bytes,
        pcrs: Mapping[str, Mapping[int, bytes]],
        *,
        event_log: bytes | None = None,
        ima_log: bytes | None = None,
    ) -> TrustReport:
        """Appraise a quote you hold (made with ``nonce`` from :meth:`issue_nonce`) against
        the host's AK and policy; the report is stored. Raises NonceError."""
        return cv.report_in(
            self._call(
                "VerifyQuote",
                host=host,
                nonce=nonce,
                quote={"attest": attest, "signature": signature, "pcr": cv.pcrs_out(pcrs)},
                event_log=event_log,
                ima_log=ima_log,
            )
        )

    def get_trust_report(self, report_id: int) -> TrustReport:
        """One stored report. Raises ReportNotFoundError."""
        return cv.report_in(self._call("GetTrustReport", report_id=report_id))

    def list_trust_reports(
        self,
        *,
        host: str | None = None,
        status: TrustStatus | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = DEFAULT_PAGE,
    ) -> Page[TrustReport]:
        """Reports newest first, filtered by host, status and creation time."""
        out = self._call(
            "ListTrustReports",
            host=host or None,
            status=TrustStatus(status).value if status else None,
            since=cv.utc(since),
            until=cv.utc(until),
            offset=offset,
            limit=limit,
        )
        return Page(tuple(cv.report_in(r) for r in out.report or ()), int(out.total), offset, limit)

    # ------------------------------------------------------------------ whitelists

    def create_whitelist(
        self, name: str, entries: Iterable[WhitelistEntry], *, description: str | None = None
    ) -> Whitelist:
        """Create version 1 of a whitelist. Raises AlreadyExistsError."""
        return cv.whitelist_in(
            self._call(
                "CreateWhitelist",
                name=name,
                description=description or None,
                entry=cv.entries_out(entries),
            )
        )

    def get_whitelist(self, name: str, version: int | None = None) -> Whitelist:
        """One version (default: the latest) with its entries. Raises WhitelistNotFoundError."""
        return cv.whitelist_in(self._call("GetWhitelist", name=name, version=version))

    def list_whitelists(self) -> list[WhitelistSummary]:
        """The latest version of every whitelist (without entries)."""
        return [cv.whitelist_summary_in(w) for w in self._call("ListWhitelists") or ()]

    def add_whitelist_entries(
        self,
        name: str,
        entries: Iterable[WhitelistEntry],
        *,
        expected_version: int | None = None,
    ) -> Whitelist:
        """Add entries in a new version (refused with VersionConflictError unless
        ``expected_version`` is the latest, when given)."""
        return cv.whitelist_in(
            self._call(
                "AddWhitelistEntries",
                name=name,
                entry=cv.entries_out(entries),
                expected_version=expected_version,
            )
        )

    def remove_whitelist_entries(
        self,
        name: str,
        entries: Iterable[WhitelistEntry],
        *,
        expected_version: int | None = None,
    ) -> Whitelist:
        """Remove entries in a new version (each must be present)."""
        return cv.whitelist_in(
            self._call(
                "RemoveWhitelistEntries",
                name=name,
                entry=cv.entries_out(entries),
                expected_version=expected_version,
            )
        )

    def delete_whitelist(self, name: str) -> bool:
        """Delete a whitelist (refused with InUseError while a policy uses it)."""
        return bool(self._call("DeleteWhitelist", name=name))

    def import_whitelist_from_host(
        self,
        host: str,
        name: str,
        pcrs: Iterable[int],
        *,
        banks: Iterable[str] = ("sha256",),
        kinds: Iterable[EntryKind | str] = (EntryKind.PCR, EntryKind.EVENT),
        mode: str = "CREATE",
        description: str | None = None,
    ) -> Whitelist:
        """Capture golden values from a known-good host (``mode``: CREATE, NEW_VERSION or
        MERGE): PCR values of a fresh verified quote, event digests of PCRs whose log
        replays to it."""
        return cv.whitelist_in(
            self._call(
                "ImportWhitelistFromHost",
                host=host,
                name=name,
                pcr=[int(p) for p in pcrs],
                bank=list(banks),
                kind=[EntryKind(k).value for k in kinds],
                mode=mode,
                description=description or None,
            )
        )

    # ------------------------------------------------------------------ policies and pools

    def create_policy(self, policy: Policy) -> Policy:
        """Create version 1 of ``policy`` (its ``version`` is ignored). Raises
        AlreadyExistsError, PolicyError, WhitelistNotFoundError."""
        return cv.policy_in(self._call("CreatePolicy", policy=cv.policy_out(policy)))

    def update_policy(self, policy: Policy, *, expected_version: int | None = None) -> Policy:
        """A new version of ``policy``. Raises PolicyNotFoundError, VersionConflictError."""
        return cv.policy_in(
            self._call(
                "UpdatePolicy", policy=cv.policy_out(policy), expected_version=expected_version
            )
        )

    def get_policy(self, name: str, version: int | None = None) -> Policy:
        """One version of a policy (default: the latest). Raises PolicyNotFoundError."""
        return cv.policy_in(self._call("GetPolicy", name=name, version=version))

    def list_policies(self) -> list[Policy]:
        """The latest version of every policy."""
        return [cv.policy_in(p) for p in self._call("ListPolicies") or ()]

    def delete_policy(self, name: str) -> bool:
        """Delete a policy (refused with InUseError while assigned)."""
        return bool(self._call("DeletePolicy", name=name))

    def assign_policy(
        self, policy: str | None, *, host: str | None = None, pool: str | None = None
    ) -> bool:
        """Assign ``policy`` to exactly one of ``host`` or ``pool`` (``None`` removes the
        assignment). A host's own policy wins over its pool's."""
        return bool(
            self._call("AssignPolicy", policy=policy or None, host=host or None, pool=pool or None)
        )

    def list_pools(self) -> list[PoolInfo]:
        """Pools with their policy and number of hosts."""
        return [cv.pool_in(p) for p in self._call("ListPools") or ()]

    # ------------------------------------------------------------------ trust consumers

    def list_trusted_hosts(
        self, pool: str, requirements: WorkloadRequirements | None = None
    ) -> list[PlacementDecision]:
        """Every host of ``pool`` with allow/deny under ``requirements`` (allowed first)."""
        out = self._call(
            "ListTrustedHosts", pool=pool, requirements=cv.requirements_out(requirements)
        )
        return [cv.decision_in(d) for d in out or ()]

    def check_placement(
        self, host: str, requirements: WorkloadRequirements | None = None
    ) -> PlacementDecision:
        """May a workload with ``requirements`` run on ``host`` now? Allow or deny with
        every reason. Raises UnknownHostError."""
        return cv.decision_in(
            self._call("CheckPlacement", host=host, requirements=cv.requirements_out(requirements))
        )

    def get_trust_assertion(self, host: str, *, max_age: int | None = None) -> TrustAssertion:
        """A signed SAML 2.0 assertion about the host's newest report (refused with
        InvalidArgumentError when there is none, or it is older than ``max_age``).
        Verify it with :meth:`get_signing_certificate` before relying on it."""
        return cv.assertion_in(self._call("GetTrustAssertion", host=host, max_age=max_age))

    def get_signing_certificate(self) -> bytes:
        """The PEM certificate of the key that signs trust assertions.

        Security: it comes from the server you are asking; pin it (or its CA)
        out of band when the channel is not authenticated TLS.
        """
        return str(self._call("GetSigningCertificate")).encode("utf-8")

    def list_audit_records(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = DEFAULT_PAGE,
    ) -> Page[AuditRecord]:
        """The audit log newest first, filtered and paged."""
        out = self._call(
            "ListAuditRecords",
            actor_name=actor or None,
            action=action or None,
            target=target or None,
            since=cv.utc(since),
            until=cv.utc(until),
            offset=offset,
            limit=limit,
        )
        return Page(tuple(cv.audit_in(a) for a in out.record or ()), int(out.total), offset, limit)
