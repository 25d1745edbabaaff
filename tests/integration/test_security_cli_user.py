"""``soapattest user ...`` against a real SQLite file; stored credentials authenticate."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from soapattest.cli.main import cli
from soapattest.errors import BadCredentialsError
from soapattest.security.credentials import StoredCredential, load_digest_key
from soapattest.security.nonces import StoreNonceCache
from soapattest.security.passwords import verify_password
from soapattest.security.wssecurity import Authenticator, build_security_header
from soapattest.store import Store

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "another horse, another battery"


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "state" / "soapattest.sqlite"
        self.url = f"sqlite:///{self.db}"
        self.key = tmp_path / "digest.key"
        self.config = tmp_path / "soapattest.conf"
        self.config.write_text(f"[database]\nurl = {self.url}\n[auth]\ndigest_key = {self.key}\n")
        self.db.parent.mkdir()
        self.runner = CliRunner()

    def run(self, *args: str, stdin: str | None = None,
            env: dict[str, str | None] | None = None) -> Any:
        return self.runner.invoke(cli, ["user", *args], input=stdin, env=env)

    def store(self) -> Store:
        return Store(self.url)

    def users(self) -> dict[str, Any]:
        with self.store() as s, s.transaction(readonly=True) as tx:
            return {u.name: u for u in tx.users.list()}

    def audit(self) -> list[Any]:
        with self.store() as s, s.transaction(readonly=True) as tx:
            records, _ = tx.audit.list(limit=100)
        return list(reversed(records))


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def add(env: Env, name: str, *roles: str, digest: bool = False) -> Any:
    args = ["add", name, "--password-stdin", "--config", str(env.config), "--actor", "ops"]
    for role in roles:
        args += ["--role", role]
    if digest:
        args.append("--digest")
    return env.run(*args, stdin=PASSWORD + "\n")


def test_add_and_list(env: Env) -> None:
    r = add(env, "alice", "admin", "reader")
    assert r.exit_code == 0, r.output
    user = env.users()["alice"]
    assert user.roles == ("admin", "reader")
    stored = StoredCredential.parse(user.password_hash)
    assert stored.digest_enabled is False
    assert verify_password(PASSWORD, stored.password_hash)
    assert PASSWORD not in user.password_hash

    r = env.run("list", "--json", "--database-url", env.url)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [(x["name"], x["roles"], x["password_digest"]) for x in rows] == [
        ("alice", ["admin", "reader"], False)
    ]
    r = env.run("list", "--database-url", env.url)
    assert r.output.strip() == "alice  admin,reader"


def test_add_is_audited_without_secrets(env: Env) -> None:
    assert add(env, "alice", "attester").exit_code == 0
    [record] = env.audit()
    assert (record.actor, record.action, record.target_type, record.target, record.outcome) == (
        "ops", "user.add", "user", "alice", "ok")
    assert record.details == {"roles": ["attester"], "password_digest": False}
    text = json.dumps(record.details)
    assert PASSWORD not in text and "scrypt" not in text


def test_default_actor_is_the_os_user(env: Env) -> None:
    r = env.run("add", "carol", "-r", "reader", "--password-stdin", "--database-url", env.url,
                stdin=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert env.audit()[0].actor.startswith("local:")


def test_database_url_from_environment(env: Env) -> None:
    r = env.run("add", "dave", "-r", "reader", "--password-stdin", stdin=PASSWORD + "\n",
                env={"SOAPATTEST_DATABASE_URL": env.url, "SOAPATTEST_CONFIG": None})
    assert r.exit_code == 0, r.output
    assert "dave" in env.users()


def test_password_prompt_hidden_and_confirmed(env: Env) -> None:
    r = env.run("add", "erin", "-r", "reader", "--database-url", env.url,
                stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    assert PASSWORD not in r.output
    assert verify_password(PASSWORD, env.users()["erin"].password_hash)


def test_digest_user_and_key_creation(env: Env) -> None:
    r = add(env, "alice", "attester", digest=True)
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(env.key.stat().st_mode) == 0o600
    stored = StoredCredential.parse(env.users()["alice"].password_hash)
    assert stored.sealed_password is not None
    assert load_digest_key(env.key).unseal("alice", stored.sealed_password) == PASSWORD
    assert json.loads(env.run("list", "--json", "--config", str(env.config)).output)[0][
        "password_digest"] is True


def test_cli_users_authenticate(env: Env) -> None:
    assert add(env, "alice", "attester", digest=True).exit_code == 0
    assert add(env, "bob", "reader").exit_code == 0
    with env.store() as store:
        auth = Authenticator(nonce_cache=StoreNonceCache(store),
                             digest_key=load_digest_key(env.key))
        now = datetime.now(UTC)
        with store.transaction(readonly=True) as tx:
            alice = auth.authenticate(build_security_header("alice", PASSWORD), users=tx.users,
                                      now=now, secure=False)
            bob = auth.authenticate(build_security_header("bob", PASSWORD, mode="text"),
                                    users=tx.users, now=now, secure=True)
            with pytest.raises(BadCredentialsError):
                auth.authenticate(build_security_header("bob", PASSWORD), users=tx.users,
                                  now=now, secure=False)  # bob has no digest secret
    assert (alice.name, alice.roles) == ("alice", ("attester",))
    assert (bob.name, bob.roles) == ("bob", ("reader",))


def test_passwd_keeps_digest_state(env: Env) -> None:
    assert add(env, "alice", "admin", digest=True).exit_code == 0
    old = env.users()["alice"].password_hash
    r = env.run("passwd", "alice", "--password-stdin", "--config", str(env.config),
                stdin=NEW_PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    stored = StoredCredential.parse(env.users()["alice"].password_hash)
    assert stored.encode() != old
    assert verify_password(NEW_PASSWORD, stored.password_hash)
    assert not verify_password(PASSWORD, stored.password_hash)
    assert stored.sealed_password is not None
    assert load_digest_key(env.key).unseal("alice", stored.sealed_password) == NEW_PASSWORD
    assert env.audit()[-1].action == "user.passwd"


def test_passwd_can_disable_digest(env: Env) -> None:
    assert add(env, "alice", "admin", digest=True).exit_code == 0
    r = env.run("passwd", "alice", "--no-digest", "--password-stdin", "--config",
                str(env.config), stdin=NEW_PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert StoredCredential.parse(env.users()["alice"].password_hash).digest_enabled is False


def test_roles_replace_show_and_audit(env: Env) -> None:
    assert add(env, "alice", "reader").exit_code == 0
    r = env.run("roles", "alice", "host-admin", "whitelist-admin", "--database-url", env.url)
    assert r.exit_code == 0, r.output
    assert env.users()["alice"].roles == ("host-admin", "whitelist-admin")
    r = env.run("roles", "alice", "--database-url", env.url)
    assert r.output.strip() == "host-admin,whitelist-admin"
    record = env.audit()[-1]
    assert record.action == "user.roles"
    assert record.details == {"old": ["reader"], "new": ["host-admin", "whitelist-admin"]}


def test_remove(env: Env) -> None:
    assert add(env, "alice", "reader").exit_code == 0
    r = env.run("remove", "alice", "--database-url", env.url)
    assert r.exit_code == 0, r.output
    assert env.users() == {}
    assert [a.action for a in env.audit()] == ["user.add", "user.remove"]


# ------------------------------------------------------------------ errors: one line, exit 2


def one_line_error(r: Any) -> str:
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("soapattest: "), r.output
    return str(lines[0])


def test_unknown_role_refused(env: Env) -> None:
    line = one_line_error(add(env, "alice", "root"))
    assert "root" in line
    assert not env.db.exists() or env.users() == {}


def test_no_role_refused(env: Env) -> None:
    one_line_error(add(env, "alice"))


def test_duplicate_user_refused(env: Env) -> None:
    assert add(env, "alice", "reader").exit_code == 0
    assert "Client.AlreadyExists" in one_line_error(add(env, "alice", "admin"))
    assert env.users()["alice"].roles == ("reader",)
    assert len(env.audit()) == 1


def test_weak_password_refused(env: Env) -> None:
    r = env.run("add", "alice", "-r", "reader", "--password-stdin", "--database-url", env.url,
                stdin="short\n")
    line = one_line_error(r)
    assert "Client.WeakPassword" in line and "short" not in line
    assert env.users() == {}


@pytest.mark.parametrize("command", [["remove", "ghost"], ["roles", "ghost", "reader"],
                                     ["roles", "ghost"]])
def test_unknown_user_refused(env: Env, command: list[str]) -> None:
    assert "Client.UserNotFound" in one_line_error(env.run(*command, "--database-url", env.url))


def test_unknown_user_passwd_refused(env: Env) -> None:
    r = env.run("passwd", "ghost", "--password-stdin", "--database-url", env.url,
                stdin=PASSWORD + "\n")
    assert "Client.UserNotFound" in one_line_error(r)


def test_digest_without_key_configured_refused(env: Env) -> None:
    r = env.run("add", "alice", "-r", "reader", "--digest", "--password-stdin", "--database-url",
                env.url, stdin=PASSWORD + "\n", env={"SOAPATTEST_CONFIG": None})
    assert "digest key" in one_line_error(r)
    assert env.users() == {}


def test_world_readable_digest_key_refused(env: Env) -> None:
    assert add(env, "alice", "reader", digest=True).exit_code == 0
    os.chmod(env.key, 0o644)
    r = env.run("passwd", "alice", "--password-stdin", "--config", str(env.config),
                stdin=NEW_PASSWORD + "\n")
    assert r.exit_code != 0
    assert "chmod 600" in r.output
    assert verify_password(PASSWORD, StoredCredential.parse(
        env.users()["alice"].password_hash).password_hash)
