"""Argument checks of the store: every value a caller hands in passes one of these
before anything is written, so a bad argument is an InvalidArgumentError (naming the
argument), never a half-written row or a driver error."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from soapattest.errors import InvalidArgumentError
from soapattest.store.orm import NAME_LENGTH

MAX_PAGE = 10_000


def utc(value: datetime, argument: str) -> datetime:
    """``value`` converted to UTC; InvalidArgumentError unless it is a timezone-aware datetime."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentError(
            f"{argument} must be a timezone-aware datetime", argument=argument
        )
    return value.astimezone(UTC)


def name(value: str, argument: str, *, length: int = NAME_LENGTH, empty: bool = False) -> str:
    """Check a name-like string: a str, non-empty (unless ``empty``), at most ``length`` chars,
    without control characters. Returns it; raises InvalidArgumentError."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{argument} must be a string", argument=argument)
    if not value and not empty:
        raise InvalidArgumentError(f"{argument} must not be empty", argument=argument)
    if len(value) > length:
        raise InvalidArgumentError(
            f"{argument} is longer than {length} characters", argument=argument
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidArgumentError(f"{argument} contains control characters", argument=argument)
    return value


def text(value: str, argument: str) -> str:
    """A free-text field: any str."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{argument} must be a string", argument=argument)
    return value


def blob(value: bytes, argument: str, *, empty: bool = False) -> bytes:
    """A bytes value (non-empty unless ``empty``)."""
    if not isinstance(value, bytes):
        raise InvalidArgumentError(f"{argument} must be bytes", argument=argument)
    if not value and not empty:
        raise InvalidArgumentError(f"{argument} must not be empty", argument=argument)
    return value


def uint(value: int | None, argument: str, bound: int) -> int | None:
    """``None`` or an int in ``0 <= value < bound``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < bound:
        raise InvalidArgumentError(
            f"{argument} must be an integer in [0, {bound})", argument=argument
        )
    return value


def page(offset: int, limit: int) -> tuple[int, int]:
    """Check paging arguments: ``offset >= 0`` and ``0 <= limit <= MAX_PAGE``."""
    if uint(offset, "offset", 1 << 62) is None or uint(limit, "limit", MAX_PAGE + 1) is None:
        raise InvalidArgumentError("offset and limit are required", argument="limit")
    return offset, limit


def json_object(value: Mapping[str, Any], argument: str) -> dict[str, Any]:
    """A JSON-serialisable mapping with string keys; returns a plain dict copy."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidArgumentError(f"{argument} must map strings to values", argument=argument)
    try:
        copied: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"{argument} is not JSON-serialisable: {exc}", argument=argument
        ) from exc
    return copied


def labels(value: Mapping[str, str]) -> dict[str, str]:
    """Host labels: string keys (names) and string values."""
    if not isinstance(value, Mapping):
        raise InvalidArgumentError("labels must map strings to strings", argument="labels")
    out: dict[str, str] = {}
    for key, item in value.items():
        out[name(key, "labels")] = text(item, "labels")
    return out


def roles(value: Iterable[str]) -> list[str]:
    """User roles: distinct names, order kept."""
    if isinstance(value, str):
        raise InvalidArgumentError("roles must be a sequence of names", argument="roles")
    out: list[str] = []
    for role in value:
        if name(role, "roles", length=64) not in out:
            out.append(role)
    return out
