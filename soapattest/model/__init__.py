"""Domain types shared by every layer: plain frozen dataclasses, no I/O.

The service layer converts SOAP wire types to and from these, the store
converts ORM rows to and from these, and the verifier consumes and produces
them. None of them is a SOAP type or a table.
"""

from soapattest.model.audit import AuditRecord
from soapattest.model.host import Host, HostIdentity, QuoteState
from soapattest.model.policy import (
    LATEST,
    Combine,
    ImaMode,
    ImaRequirements,
    Policy,
    SecureBootRequirements,
    WhitelistRef,
)
from soapattest.model.trust import Check, CheckStatus, TrustReport, TrustStatus, overall_status
from soapattest.model.user import User
from soapattest.model.whitelist import EntryKind, Whitelist, WhitelistEntry
from soapattest.model.workload import PlacementDecision, WorkloadRequirements

__all__ = [
    "LATEST",
    "AuditRecord",
    "Check",
    "CheckStatus",
    "Combine",
    "EntryKind",
    "Host",
    "HostIdentity",
    "ImaMode",
    "ImaRequirements",
    "PlacementDecision",
    "Policy",
    "QuoteState",
    "SecureBootRequirements",
    "TrustReport",
    "TrustStatus",
    "User",
    "Whitelist",
    "WhitelistEntry",
    "WhitelistRef",
    "WorkloadRequirements",
    "overall_status",
]
