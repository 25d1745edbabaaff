"""Errors -> SOAP faults, in one place.

Every :class:`~soapattest.errors.SoapAttestError` becomes a fault with its
stable dotted code and its sentence. Anything else is a bug or an outage of
ours: the caller gets ``Server.Internal`` with an incident id, the traceback
goes only to the log under that id.
"""

from __future__ import annotations

import logging
import uuid

from spyne import Fault

from soapattest.errors import SoapAttestError

log = logging.getLogger("soapattest.service")
MAX_FAULT_STRING = 2000


def to_fault(exc: BaseException, operation: str) -> Fault:
    """The SOAP fault for ``exc`` raised while serving ``operation``."""
    if isinstance(exc, Fault):
        return exc
    if isinstance(exc, SoapAttestError):
        level = logging.INFO if exc.code.startswith("Client.") else logging.WARNING
        log.log(level, "%s refused: %s: %s", operation, exc.code, exc.message)
        return Fault(faultcode=exc.code, faultstring=exc.message[:MAX_FAULT_STRING])
    incident = uuid.uuid4().hex[:12]
    log.error("%s failed (incident %s)", operation, incident, exc_info=exc)
    return Fault(
        faultcode="Server.Internal",
        faultstring=f"internal error while serving {operation}; incident {incident} is in the "
        "server log",
    )
