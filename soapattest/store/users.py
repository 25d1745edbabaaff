"""Users: names, password hashes (opaque strings from the authentication layer), roles."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from soapattest.errors import UserExistsError, UserNotFoundError
from soapattest.model import User
from soapattest.store import convert, validate
from soapattest.store.core import connection, table
from soapattest.store.db import guarded
from soapattest.store.orm import UserRow

_USERS = table(UserRow)
_FIND = select(_USERS).where(_USERS.c.name == bindparam("name"))


@guarded
class UserRepository:
    """``tx.users``. The store never sees a password, only its hash."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, name: str, password_hash: str, roles: Iterable[str], now: datetime) -> User:
        """Create user ``name``. Raises UserExistsError, InvalidArgumentError."""
        now = validate.utc(now, "now")
        user_name = validate.name(name, "name")
        row = UserRow(
            name=user_name,
            password_hash=validate.name(password_hash, "password_hash", length=1024),
            roles=validate.roles(roles),
            created_at=now,
            updated_at=now,
        )
        if self._find(user_name) is not None:
            raise UserExistsError(f"a user named {user_name!r} exists", name=user_name)
        self._s.add(row)
        try:
            self._s.flush()
        except sa_exc.IntegrityError as exc:  # a concurrent add won the race
            raise UserExistsError(f"a user named {user_name!r} exists", name=user_name) from exc
        return convert.user_from_row(row)

    def get(self, name: str) -> User:
        """User ``name``. UserNotFoundError."""
        return convert.user_from_row(self._get(name))

    def find(self, name: str) -> User | None:
        """User ``name`` or None (a Core query: this runs on every authenticated call)."""
        row = connection(self._s).execute(_FIND, {"name": name}).one_or_none()
        return None if row is None else convert.user_from_row(row)

    def list(self) -> builtins.list[User]:
        """Every user, sorted by name."""
        return [
            convert.user_from_row(r)
            for r in self._s.scalars(select(UserRow).order_by(UserRow.name))
        ]

    def remove(self, name: str) -> None:
        """Delete user ``name`` (audit records keep the name). UserNotFoundError."""
        self._s.delete(self._get(name))
        self._s.flush()

    def set_password(self, name: str, password_hash: str, now: datetime) -> User:
        """Replace the password hash. UserNotFoundError, InvalidArgumentError."""
        now = validate.utc(now, "now")
        password_hash = validate.name(password_hash, "password_hash", length=1024)
        row = self._get(name, lock=True)
        row.password_hash = password_hash
        row.updated_at = now
        self._s.flush()
        return convert.user_from_row(row)

    def set_roles(self, name: str, roles: Iterable[str], now: datetime) -> User:
        """Replace the roles. UserNotFoundError, InvalidArgumentError."""
        now = validate.utc(now, "now")
        checked = validate.roles(roles)
        row = self._get(name, lock=True)
        row.roles = checked
        row.updated_at = now
        self._s.flush()
        return convert.user_from_row(row)

    def _find(self, name: str, *, lock: bool = False) -> UserRow | None:
        query = select(UserRow).where(UserRow.name == name)
        if lock:
            query = query.with_for_update()
        return self._s.scalars(query).one_or_none()

    def _get(self, name: str, *, lock: bool = False) -> UserRow:
        row = self._find(name, lock=lock)
        if row is None:
            raise UserNotFoundError(f"no user named {name!r}", name=name)
        return row
