"""Creating service users programmatically (the demo, tests, provisioning scripts).

``soapattest user ...`` is the operator's interface; this is the same
operation for code: create the user, or reset its password and roles, with
the change and its audit record in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from soapattest.errors import InvalidArgumentError
from soapattest.model import User
from soapattest.security.credentials import DigestKey, new_credential
from soapattest.security.passwords import check_new_password
from soapattest.security.roles import unknown_roles
from soapattest.store import Store


def ensure_user(
    store: Store,
    name: str,
    password: str,
    roles: Sequence[str],
    *,
    actor: str,
    now: datetime,
    digest_key: DigestKey | None = None,
) -> User:
    """Create ``name`` with ``password`` and ``roles``, or reset an existing user to them.

    With ``digest_key`` the user may also authenticate with PasswordDigest.
    Raises InvalidArgumentError for unknown roles, WeakPasswordError for a weak
    password.
    """
    bad = unknown_roles(roles)
    if bad:
        raise InvalidArgumentError(f"unknown roles: {', '.join(bad)}", argument="roles")
    check_new_password(password)
    credential = new_credential(name, password, digest_key=digest_key)
    with store.transaction() as tx:
        if tx.users.find(name) is None:
            user = tx.users.add(name, credential, tuple(roles), now)
            action = "user.add"
        else:
            tx.users.set_password(name, credential, now)
            user = tx.users.set_roles(name, tuple(roles), now)
            action = "user.reset"
        tx.audit.record(
            actor=actor,
            action=action,
            target_type="user",
            target=name,
            outcome="ok",
            details={"roles": list(roles), "password_digest": digest_key is not None},
            at=now,
        )
    return user
