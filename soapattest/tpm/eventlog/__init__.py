"""TCG PC Client firmware event logs: strict parsing, replay and decoding.

Typical use (a verifier)::

    log = parse_event_log(raw)             # EventLogError subclasses on bad input
    values = replay(log, banks=["sha256"])  # bank -> PCR -> value
    # compare with a *verified* quote; only then trust events_for_pcr(log, pcr)
    text = decode_event(log.events[5], uintn_bytes=log.uintn_bytes).summary

Modules: ``parser`` (formats and bounds), ``specid`` (the crypto-agile header),
``replay``, ``decode`` (+ ``efi``, ``devicepath``, ``gpt``, ``noaction``),
``eventtypes`` (EV_* values), ``model`` (frozen result types).
"""

from soapattest.tpm.eventlog.decode import (
    STRICT_TYPES,
    DecodedEvent,
    data_digest_verdict,
    decode_event,
    decode_log,
    digest_contradicts_data,
    digest_verified,
)
from soapattest.tpm.eventlog.eventtypes import EventType, event_type_name
from soapattest.tpm.eventlog.model import (
    DEFAULT_LIMITS,
    FORMAT_CRYPTO_AGILE,
    FORMAT_TCG12_SHA1,
    EventLog,
    EventLogLimits,
    EventRow,
    SpecIdAlgorithm,
    SpecIdEvent,
    UntrustedEvent,
)
from soapattest.tpm.eventlog.parser import parse_event_log
from soapattest.tpm.eventlog.replay import (
    ReplayStep,
    events_for_pcr,
    initial_pcr_value,
    replay,
    replay_steps,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FORMAT_CRYPTO_AGILE",
    "FORMAT_TCG12_SHA1",
    "STRICT_TYPES",
    "DecodedEvent",
    "EventLog",
    "EventLogLimits",
    "EventRow",
    "EventType",
    "ReplayStep",
    "SpecIdAlgorithm",
    "SpecIdEvent",
    "UntrustedEvent",
    "data_digest_verdict",
    "decode_event",
    "decode_log",
    "digest_contradicts_data",
    "digest_verified",
    "event_type_name",
    "events_for_pcr",
    "initial_pcr_value",
    "parse_event_log",
    "replay",
    "replay_steps",
]
