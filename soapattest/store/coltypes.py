"""Portable column types: UTC datetimes and unsigned 64-bit integers.

SQLite has no time zones: datetimes are stored there as naive UTC text and come
back tz-aware (UTC). PostgreSQL stores ``timestamptz`` and the connection's time
zone is UTC. Either way a value read from the store is an aware UTC datetime.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_U64 = 1 << 64
_S64_MAX = (1 << 63) - 1


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as UTC. Naive datetimes are refused (ValueError)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: the store only accepts timezone-aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers return datetimes
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class UInt64(TypeDecorator[int]):
    """An unsigned 64-bit integer (TPM clock, firmwareVersion) in a signed BIGINT column.

    Values above 2**63-1 are stored in two's complement and mapped back on read,
    so the full uint64 range round-trips on both databases without loss.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not 0 <= value < _U64:
            raise ValueError(f"{value} is outside the uint64 range")
        return value - _U64 if value > _S64_MAX else value

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        number = int(value)
        return number + _U64 if number < 0 else number
