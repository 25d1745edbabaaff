"""Validation of caller-supplied names, URLs and labels (the edges of every use case)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from soapattest.errors import InvalidArgumentError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
LABEL_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")
MAX_LABELS = 32
MAX_LABEL_VALUE = 128
MAX_TEXT = 1024
MAX_URL = 2048


def name(value: str, what: str = "name") -> str:
    """A host, pool, whitelist or policy name: 1-63 of [A-Za-z0-9._-], starting alphanumeric."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise InvalidArgumentError(
            f"{what} must be 1-63 characters of letters, digits, '.', '_' or '-' and start "
            f"with a letter or digit (got {value!r:.80})",
            argument=what,
        )
    return value


def optional_name(value: str | None, what: str) -> str:
    """An optional name: empty means none."""
    return "" if not value else name(value, what)


def text(value: str | None, what: str, limit: int = MAX_TEXT) -> str:
    """Free text without control characters (tab allowed), bounded."""
    value = value or ""
    if len(value) > limit:
        raise InvalidArgumentError(f"{what} is longer than {limit} characters", argument=what)
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        raise InvalidArgumentError(f"{what} contains control characters", argument=what)
    return value


def agent_url(value: str) -> str:
    """An http(s) URL with a host, no credentials, no fragment."""
    text(value, "agent_url", MAX_URL)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(
            f"agent_url must be an http:// or https:// URL with a host (got {value!r:.80})",
            argument="agent_url",
        )
    if parts.username or parts.password or parts.fragment:
        raise InvalidArgumentError(
            "agent_url must not carry credentials or a fragment", argument="agent_url"
        )
    return value


def labels(values: Mapping[str, str]) -> dict[str, str]:
    """Host labels: bounded count, keys like names (plus '/'), values plain text."""
    if len(values) > MAX_LABELS:
        raise InvalidArgumentError(f"at most {MAX_LABELS} labels", argument="labels")
    out: dict[str, str] = {}
    for key, value in values.items():
        if not LABEL_KEY_RE.fullmatch(key or ""):
            raise InvalidArgumentError(f"label key {key!r:.80} is not valid", argument="labels")
        out[key] = text(value, f"label {key}", MAX_LABEL_VALUE)
    return out
