"""The bundled client of the soapattest server (a typed facade over its WSDL).

:class:`AttestationClient` has one method per SOAP operation and returns the
frozen dataclasses of :mod:`soapattest.model` (or of :mod:`.results`); faults
are raised as the project's exception types. See ``docs/client.md``.
"""

from soapattest.client.client import AttestationClient
from soapattest.client.connection import WSDL_PATH, hardened_settings
from soapattest.client.results import (
    HostInfo,
    HostTrust,
    MeasuredEvent,
    Measurements,
    Page,
    PoolInfo,
    RetrievedQuote,
    TrustAssertion,
    WhitelistSummary,
)

__all__ = [
    "WSDL_PATH",
    "AttestationClient",
    "HostInfo",
    "HostTrust",
    "MeasuredEvent",
    "Measurements",
    "Page",
    "PoolInfo",
    "RetrievedQuote",
    "TrustAssertion",
    "WhitelistSummary",
    "hardened_settings",
]
