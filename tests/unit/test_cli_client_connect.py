"""Connection settings of the client commands: configuration file < environment < flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from soapattest.cli.connect import default_config_path, resolve_options
from soapattest.errors import InvalidArgumentError

NO_FLAGS: dict[str, Any] = {
    "client_config": None,
    "url": None,
    "user": None,
    "password_env": None,
    "password_file": None,
    "ca": None,
    "timeout": None,
}


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "client.conf"
    path.write_text("[client]\n" + body)
    return path


def test_default_config_path_follows_xdg(tmp_path: Path) -> None:
    assert default_config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "soapattest" / "client.conf"
    )


def test_config_file_alone(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret-password\nignored\n")
    path = config(
        tmp_path,
        "url = https://a:8443/\nuser = ops\npassword_file = pw\nca = ca.pem\ntimeout = 7\n",
    )
    opts = resolve_options(**{**NO_FLAGS, "client_config": path}, environ={})
    assert opts.url == "https://a:8443/"
    assert opts.user == "ops"
    assert opts.password == "s3cret-password"
    assert opts.ca == str(tmp_path / "ca.pem")  # relative to the file
    assert opts.timeout == 7


def test_default_location_is_read(tmp_path: Path) -> None:
    conf = tmp_path / "soapattest" / "client.conf"
    conf.parent.mkdir()
    conf.write_text("[client]\nurl = http://from-default:1/\n")
    opts = resolve_options(**NO_FLAGS, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert opts.url == "http://from-default:1/"


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = config(tmp_path, "url = http://file:1/\nuser = file-user\n")
    env = {
        "SOAPATTEST_CLIENT_CONFIG": str(path),
        "SOAPATTEST_URL": "http://env:2/",
        "SOAPATTEST_USER": "env-user",
        "SOAPATTEST_PASSWORD": "env-password",
    }
    opts = resolve_options(**NO_FLAGS, environ=env)
    assert (opts.url, opts.user, opts.password) == ("http://env:2/", "env-user", "env-password")


def test_flags_override_environment(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("flag-password\n")
    env = {
        "XDG_CONFIG_HOME": str(tmp_path),
        "SOAPATTEST_URL": "http://env:2/",
        "SOAPATTEST_USER": "env-user",
        "SOAPATTEST_PASSWORD": "env-password",
        "OTHER": "other-password",
    }
    opts = resolve_options(
        **{
            **NO_FLAGS,
            "url": "http://flag:3/",
            "user": "flag-user",
            "password_file": pw,
            "timeout": 5.0,
        },
        environ=env,
    )
    assert (opts.url, opts.user, opts.password, opts.timeout) == (
        "http://flag:3/",
        "flag-user",
        "flag-password",
        5.0,
    )
    opts = resolve_options(**{**NO_FLAGS, "password_env": "OTHER"}, environ=env)
    assert opts.password == "other-password"


def test_no_url_anywhere_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no server URL"):
        resolve_options(**NO_FLAGS, environ={"XDG_CONFIG_HOME": str(tmp_path)})


def test_user_without_password_is_refused(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "SOAPATTEST_URL": "http://a:1/"}
    with pytest.raises(InvalidArgumentError, match="needs a password"):
        resolve_options(**{**NO_FLAGS, "user": "ops"}, environ=env)


def test_missing_password_variable_is_refused(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "SOAPATTEST_URL": "http://a:1/"}
    with pytest.raises(InvalidArgumentError, match="NOPE"):
        resolve_options(**{**NO_FLAGS, "password_env": "NOPE"}, environ=env)


@pytest.mark.parametrize(
    "body",
    ["password = x\n", "url = http://a:1/\ntimeout = soon\n", "url = http://a:1/\ntimeout = 0\n"],
)
def test_bad_config_file(tmp_path: Path, body: str) -> None:
    path = config(tmp_path, body)
    with pytest.raises(InvalidArgumentError):
        resolve_options(**{**NO_FLAGS, "client_config": path}, environ={})


def test_explicit_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot read client configuration"):
        resolve_options(
            **{**NO_FLAGS, "client_config": tmp_path / "absent.conf", "url": "http://a:1/"},
            environ={},
        )
