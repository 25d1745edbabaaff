"""``soapattest user add|list|remove|passwd|roles``: manage service users in the database.

Works directly on the server's database (``--config`` / ``$SOAPATTEST_CONFIG``,
``--database-url`` or ``SOAPATTEST_DATABASE_URL``), migrating it first. Passwords
are read from a hidden, confirmed prompt or, with ``--password-stdin``, from the
first line of standard input; they are never echoed, logged or stored in clear
(scrypt hash; for PasswordDigest users also sealed under the ``[auth]
digest_key``, see docs/security.md). Every change is recorded in the audit log
in the same transaction, with the actor ``local:<OS user>`` or ``--actor``.
Errors print one line; bad input exits with 2, database failures with 1.
"""

from __future__ import annotations

import functools
import getpass
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from soapattest.cli.common import cli_errors, echo_json, fail
from soapattest.cli.serve import CONFIG_HELP, load
from soapattest.errors import CredentialFormatError
from soapattest.model import User
from soapattest.security.credentials import (
    DigestKey,
    StoredCredential,
    load_digest_key,
    load_or_create_digest_key,
    new_credential,
)
from soapattest.security.passwords import check_new_password
from soapattest.security.roles import ROLES, unknown_roles
from soapattest.server.config import ServerConfig

if TYPE_CHECKING:
    from soapattest.store import Store

F = TypeVar("F", bound=Callable[..., Any])


def _db_options(func: F) -> F:
    """``--config``, ``--database-url`` and ``--actor`` on every subcommand."""

    @click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
                  help=CONFIG_HELP)
    @click.option("--database-url", help="SQLAlchemy URL (overrides the configuration).")
    @click.option("--actor", help="Name recorded in the audit log (default: local:<OS user>).")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"local:uid{os.getuid()}"


def _open(config_path: Path | None, database_url: str | None) -> tuple[ServerConfig, Store]:
    from soapattest.store import Store  # imported here: keeps other commands quick to start

    cfg = load(config_path, database_url=database_url)
    # The state directory holds the SQLite database and, by default, the digest key.
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(cfg.db_url, busy_timeout_ms=int(cfg.busy_timeout * 1000))
    store.upgrade()
    return cfg, store


def _checked_roles(roles: tuple[str, ...]) -> list[str]:
    if not roles:
        fail("at least one --role is required (roles: " + ", ".join(ROLES) + ")")
    bad = unknown_roles(roles)
    if bad:
        fail(f"unknown role(s) {', '.join(bad)}; roles are: {', '.join(ROLES)}")
    return list(dict.fromkeys(roles))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n") if line.endswith("\n") else line
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                err=True)
    check_new_password(password)
    return password


def _digest_key(cfg: ServerConfig, path: Path | None, *, create: bool) -> DigestKey:
    key_path = path or cfg.auth_digest_key
    if key_path is None:
        fail("PasswordDigest needs a digest key: set [auth] digest_key or pass --digest-key")
    assert key_path is not None
    if not create:
        return load_digest_key(key_path)
    key, created = load_or_create_digest_key(key_path)
    if created:
        click.echo(f"soapattest: created the digest key {key_path} (mode 0600); keep it "
                   "outside database backups", err=True)
    return key


def _digest_enabled(user: User) -> bool:
    try:
        return StoredCredential.parse(user.password_hash).digest_enabled
    except CredentialFormatError:
        return False


def _now() -> datetime:
    return datetime.now(UTC)


@click.group()
def user() -> None:
    """Manage the users of the attestation service (directly in its database)."""


_ROLE_HELP = "Role to grant (repeatable): " + ", ".join(ROLES) + "."
_STDIN_HELP = "Read the password from the first line of stdin instead of prompting."
_DIGEST_KEY_HELP = "Digest key file (overrides [auth] digest_key)."


@user.command("add")
@click.argument("name")
@click.option("--role", "-r", "roles", multiple=True, help=_ROLE_HELP)
@click.option("--password-stdin", is_flag=True, help=_STDIN_HELP)
@click.option("--digest/--no-digest", default=False, show_default=True,
              help="Also allow WS-Security PasswordDigest for this user (the password is "
              "then kept sealed under the server's digest key).")
@click.option("--digest-key", type=click.Path(path_type=Path, dir_okay=False),
              help=_DIGEST_KEY_HELP + " Created when missing.")
@_db_options
@cli_errors
def add(name: str, roles: tuple[str, ...], password_stdin: bool, digest: bool,
        digest_key: Path | None, config_path: Path | None, database_url: str | None,
        actor: str | None) -> None:
    """Create user NAME with the given roles."""
    checked = _checked_roles(roles)
    cfg, store = _open(config_path, database_url)
    with store:
        key = _digest_key(cfg, digest_key, create=True) if digest else None
        password = _read_password(password_stdin)
        credential = new_credential(name, password, digest_key=key)
        now = _now()
        with store.transaction() as tx:
            tx.users.add(name, credential, checked, now)
            tx.audit.record(actor=_actor(actor), action="user.add", target_type="user",
                            target=name, outcome="ok", at=now,
                            details={"roles": checked, "password_digest": digest})
    click.echo(f"user {name} added (roles: {', '.join(checked)}"
               f"{'; PasswordDigest enabled' if digest else ''})")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_db_options
@cli_errors
def list_users(as_json: bool, config_path: Path | None, database_url: str | None,
               actor: str | None) -> None:
    """List users, their roles and whether PasswordDigest is enabled."""
    _, store = _open(config_path, database_url)
    with store, store.transaction(readonly=True) as tx:
        users = tx.users.list()
    rows: list[dict[str, Any]] = [
        {
            "name": u.name,
            "roles": list(u.roles),
            "password_digest": _digest_enabled(u),
            "created_at": u.created_at.isoformat() if u.created_at else None,
            "updated_at": u.updated_at.isoformat() if u.updated_at else None,
        }
        for u in users
    ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        digest_note = "  [digest]" if row["password_digest"] else ""
        click.echo(f"{row['name']}  {','.join(row['roles']) or '-'}{digest_note}")


@user.command("remove")
@click.argument("name")
@_db_options
@cli_errors
def remove(name: str, config_path: Path | None, database_url: str | None,
           actor: str | None) -> None:
    """Delete user NAME (audit records keep the name)."""
    _, store = _open(config_path, database_url)
    now = _now()
    with store, store.transaction() as tx:
        old = tx.users.get(name)
        tx.users.remove(name)
        tx.audit.record(actor=_actor(actor), action="user.remove", target_type="user",
                        target=name, outcome="ok", at=now, details={"roles": list(old.roles)})
    click.echo(f"user {name} removed")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help=_STDIN_HELP)
@click.option("--digest/--no-digest", default=None,
              help="Enable or disable PasswordDigest (default: keep as it is).")
@click.option("--digest-key", type=click.Path(path_type=Path, dir_okay=False),
              help=_DIGEST_KEY_HELP)
@_db_options
@cli_errors
def passwd(name: str, password_stdin: bool, digest: bool | None, digest_key: Path | None,
           config_path: Path | None, database_url: str | None, actor: str | None) -> None:
    """Set a new password for user NAME."""
    cfg, store = _open(config_path, database_url)
    with store:
        with store.transaction(readonly=True) as tx:
            current = tx.users.get(name)
        enable = _digest_enabled(current) if digest is None else digest
        key = _digest_key(cfg, digest_key, create=digest is True) if enable else None
        password = _read_password(password_stdin)
        credential = new_credential(name, password, digest_key=key)
        now = _now()
        with store.transaction() as tx:
            tx.users.set_password(name, credential, now)
            tx.audit.record(actor=_actor(actor), action="user.passwd", target_type="user",
                            target=name, outcome="ok", at=now,
                            details={"password_digest": enable})
    click.echo(f"password of {name} changed{' (PasswordDigest enabled)' if enable else ''}")


@user.command("roles")
@click.argument("name")
@click.argument("roles", nargs=-1)
@_db_options
@cli_errors
def set_roles(name: str, roles: tuple[str, ...], config_path: Path | None,
              database_url: str | None, actor: str | None) -> None:
    """Replace the roles of user NAME with ROLES (or show them when none are given)."""
    checked = _checked_roles(roles) if roles else None
    _, store = _open(config_path, database_url)
    now = _now()
    with store, store.transaction(readonly=checked is None) as tx:
        old = tx.users.get(name)
        if checked is None:
            click.echo(",".join(old.roles) or "-")
            return
        tx.users.set_roles(name, checked, now)
        tx.audit.record(actor=_actor(actor), action="user.roles", target_type="user",
                        target=name, outcome="ok", at=now,
                        details={"old": list(old.roles), "new": checked})
    click.echo(f"roles of {name}: {', '.join(checked)}")
