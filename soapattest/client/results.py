"""Results of the client library that the domain model has no type for.

Operations that return a domain object (a trust report, a whitelist, a policy,
a placement decision, an audit record) return the frozen dataclasses of
:mod:`soapattest.model`; these small frozen dataclasses cover the rest: views
that only exist on the wire (a host as the server shows it, a bulk trust
answer, a page of a list, a fetched quote, a signed assertion).

Everything here was received from the server: it is what the server said,
not something this process verified (except where a docstring says so).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from soapattest.errors import SoapAttestError
from soapattest.model import TrustReport, TrustStatus

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HostInfo:
    """A registered host as the server reports it.

    Not :class:`soapattest.model.Host`: the wire carries the AK's name and the
    validated EK certificate but not the TPM public areas, and it adds the
    policy that applies (``effective_policy``: the host's own or its pool's).
    ``reset_count`` is the TPM resetCount of the host's last verified quote.
    """

    name: str
    agent_url: str
    pool: str = ""
    policy: str = ""
    effective_policy: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    ak_name: bytes = b""
    ek_certificate: bytes = b""
    activated_at: datetime | None = None
    reset_count: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HostTrust:
    """One host's answer in a bulk call (AttestHosts, PollHosts).

    ``status``/``report`` are ``None`` when no report could be made; then
    ``fault_code``/``fault_string`` say why (e.g. ``Client.UnknownHost``).
    ``cached`` is true when the report was served from one younger than the
    requested maximum age instead of a fresh attestation.
    """

    host: str
    status: TrustStatus | None
    cached: bool
    report: TrustReport | None = None
    fault_code: str = ""
    fault_string: str = ""

    @property
    def trusted(self) -> bool:
        """True only for a TRUSTED report (a fault or UNKNOWN is never trusted)."""
        return self.status is TrustStatus.TRUSTED

    def error(self) -> SoapAttestError | None:
        """The fault as the project's exception type (``None`` when there is a report)."""
        if not self.fault_code:
            return None
        from soapattest.client.faults import make_error

        return make_error(self.fault_code, self.fault_string)


@dataclass(frozen=True, slots=True)
class MeasuredEvent:
    """One event of a host's decoded event log (GetMeasurements).

    ``type`` is as logged (not trusted by itself); ``digests`` maps bank to the
    event's digest; ``trusted`` is the server's word that the quote vouches for
    the event's PCR (the log replays to a quoted value).
    """

    index: int
    pcr: int
    type: str
    digests: Mapping[str, bytes]
    summary: str
    trusted: bool


@dataclass(frozen=True, slots=True)
class Measurements:
    """The verified PCR values (bank -> PCR -> value) and decoded event log of a host's
    newest report."""

    host: str
    report_id: int
    pcrs: Mapping[str, Mapping[int, bytes]]
    events: tuple[MeasuredEvent, ...]


@dataclass(frozen=True, slots=True)
class RetrievedQuote:
    """A fresh quote the server fetched from a host with its own nonce and verified with
    the host's AK (RetrieveQuote): TPMS_ATTEST and TPMT_SIGNATURE bytes, the PCR values
    it covers, and the host's event log when asked for."""

    nonce: bytes
    attest: bytes
    signature: bytes
    pcrs: Mapping[str, Mapping[int, bytes]]
    event_log: bytes | None = None


@dataclass(frozen=True, slots=True)
class TrustAssertion:
    """A signed SAML 2.0 assertion about a host's newest report.

    ``xml`` is the assertion as received: verify it with
    :func:`soapattest.server.saml.verify_assertion` and the server's signing
    certificate before relying on it; ``report_id``/``status`` are the
    server's unsigned summary of it.
    """

    xml: bytes
    report_id: int
    status: TrustStatus

    @property
    def assertion(self) -> str:
        """The assertion XML as text."""
        return self.xml.decode("utf-8")


@dataclass(frozen=True, slots=True)
class PoolInfo:
    """A pool, its policy (``""`` when none) and its number of hosts."""

    name: str
    policy: str
    host_count: int


@dataclass(frozen=True, slots=True)
class WhitelistSummary:
    """The latest version of a whitelist, without its entries (ListWhitelists)."""

    name: str
    version: int
    entry_count: int
    description: str = ""
    created_at: datetime | None = None
    created_by: str = ""
    source_host: str = ""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a paged list: ``items`` from ``offset`` on, out of ``total``."""

    items: tuple[T, ...]
    total: int
    offset: int
    limit: int

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_more(self) -> bool:
        """True when items follow this page."""
        return self.offset + len(self.items) < self.total
