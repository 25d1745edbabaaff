"""Connection settings of the client commands, and the decorator that gives them a client.

Where settings come from, lowest precedence first:

1. the client configuration file: ``--client-config FILE``, else
   ``$SOAPATTEST_CLIENT_CONFIG``, else ``$XDG_CONFIG_HOME/soapattest/client.conf``
   (``~/.config/soapattest/client.conf``); INI section ``[client]`` with ``url``,
   ``user``, ``password_file``, ``ca``, ``client_cert``, ``timeout``;
2. the environment: ``SOAPATTEST_URL``, ``SOAPATTEST_USER``, ``SOAPATTEST_PASSWORD``;
3. flags: ``--url``, ``--user``, ``--password-env VAR``, ``--password-file FILE``,
   ``--ca FILE``, ``--timeout SECONDS``.

A password is never a flag value (it would show in the process list).
"""

from __future__ import annotations

import configparser
import functools
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import click

from soapattest.client import AttestationClient
from soapattest.errors import InvalidArgumentError, SoapAttestError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("soapattest.cli")

CONFIG_ENV = "SOAPATTEST_CLIENT_CONFIG"
CONFIG_KEYS = ("url", "user", "password_file", "ca", "client_cert", "timeout")

CLIENT_HELP = (
    "Client commands (host, attest, poll, nonce, whitelist, policy, report, assertion, pool, "
    "placement, audit) talk to a server. Their connection settings come from the client "
    "configuration file (--client-config, else $SOAPATTEST_CLIENT_CONFIG, else "
    "~/.config/soapattest/client.conf), then SOAPATTEST_URL / SOAPATTEST_USER / "
    "SOAPATTEST_PASSWORD, then their flags (--url, --user, --password-env, --password-file, "
    "--ca, --timeout); later sources win. See docs/client.md."
)
PRECEDENCE_HELP = (
    "Connection settings come from the client configuration file (--client-config, else "
    "$SOAPATTEST_CLIENT_CONFIG, else ~/.config/soapattest/client.conf: [client] url, user, "
    "password_file, ca, client_cert, timeout), then SOAPATTEST_URL / SOAPATTEST_USER / "
    "SOAPATTEST_PASSWORD, then flags; later sources win. Exit status: 0 ok, 1 server-side "
    "failure, unreachable server or a negative result, 2 refused request (Client.* fault) "
    "or bad input."
)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """The resolved connection settings."""

    url: str = ""
    user: str = ""
    password: str | None = None
    ca: str = ""
    client_cert: str = ""
    timeout: float = 30.0


def default_config_path(environ: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/soapattest/client.conf`` (``~/.config/...`` by default)."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "soapattest" / "client.conf"


def _read_secret(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgumentError(
            f"cannot read {what} {path}: {exc.strerror or exc}", argument=what
        ) from None
    lines = text.splitlines()
    return lines[0] if lines else ""


def _timeout(value: str, source: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise InvalidArgumentError(
            f"{source}: timeout {value!r} is not a number", argument="timeout"
        ) from None
    if not 0 < seconds <= 3600:
        raise InvalidArgumentError(
            f"{source}: timeout must be within (0, 3600] seconds", argument="timeout"
        )
    return seconds


def read_config_file(path: Path, opts: ClientOptions) -> ClientOptions:
    """``opts`` updated from the ``[client]`` section of ``path``; relative paths are
    relative to the file. Raises InvalidArgumentError (unknown key, unreadable file)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error) as exc:
        raise InvalidArgumentError(
            f"cannot read client configuration {path}: {exc}", argument="client-config"
        ) from None
    if not parser.has_section("client"):
        return opts
    values = dict(parser.items("client"))
    unknown = sorted(set(values) - set(CONFIG_KEYS))
    if unknown:
        raise InvalidArgumentError(
            f"{path}: unknown option(s) {', '.join(unknown)} in [client] "
            f"(known: {', '.join(CONFIG_KEYS)})",
            argument="client-config",
        )
    base = path.resolve().parent

    def rel(value: str) -> str:
        return str(base / value) if value and not Path(value).is_absolute() else value

    changes: dict[str, Any] = {}
    if values.get("url"):
        changes["url"] = values["url"].strip()
    if values.get("user"):
        changes["user"] = values["user"].strip()
    if values.get("password_file"):
        changes["password"] = _read_secret(
            Path(rel(values["password_file"].strip())), "password_file"
        )
    if values.get("ca"):
        changes["ca"] = rel(values["ca"].strip())
    if values.get("client_cert"):
        changes["client_cert"] = rel(values["client_cert"].strip())
    if values.get("timeout"):
        changes["timeout"] = _timeout(values["timeout"], str(path))
    return replace(opts, **changes)


def resolve_options(
    *,
    client_config: Path | None,
    url: str | None,
    user: str | None,
    password_env: str | None,
    password_file: Path | None,
    ca: Path | None,
    timeout: float | None,
    environ: Mapping[str, str] | None = None,
) -> ClientOptions:
    """Settings from the configuration file, then the environment, then flags.

    Raises InvalidArgumentError for an explicit configuration file that cannot be
    read, a missing password variable, and when no URL is configured anywhere.
    """
    env = os.environ if environ is None else environ
    opts = ClientOptions()
    explicit = client_config or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    path = explicit or default_config_path(env)
    if explicit is not None or path.is_file():
        opts = read_config_file(path, opts)
    env_changes: dict[str, Any] = {}
    if env.get("SOAPATTEST_URL"):
        env_changes["url"] = env["SOAPATTEST_URL"]
    if env.get("SOAPATTEST_USER"):
        env_changes["user"] = env["SOAPATTEST_USER"]
    if "SOAPATTEST_PASSWORD" in env:
        env_changes["password"] = env["SOAPATTEST_PASSWORD"]
    opts = replace(opts, **env_changes)
    flag_changes: dict[str, Any] = {}
    if url:
        flag_changes["url"] = url
    if user:
        flag_changes["user"] = user
    if password_env:
        if password_env not in env:
            raise InvalidArgumentError(
                f"--password-env: the variable {password_env} is not set", argument="password"
            )
        flag_changes["password"] = env[password_env]
    if password_file is not None:
        flag_changes["password"] = _read_secret(password_file, "password file")
    if ca is not None:
        flag_changes["ca"] = str(ca)
    if timeout is not None:
        flag_changes["timeout"] = _timeout(str(timeout), "--timeout")
    opts = replace(opts, **flag_changes)
    if not opts.url:
        raise InvalidArgumentError(
            f"no server URL: give --url, set SOAPATTEST_URL, or url= in [client] of {path}",
            argument="url",
        )
    if opts.user and opts.password is None:
        raise InvalidArgumentError(
            f"user {opts.user!r} needs a password: --password-env VAR, --password-file FILE, "
            "SOAPATTEST_PASSWORD or password_file= in the client configuration",
            argument="password",
        )
    return opts


def make_client(opts: ClientOptions) -> AttestationClient:
    """An :class:`AttestationClient` for ``opts`` (credentials only when a user is set)."""
    return AttestationClient(
        opts.url,
        username=opts.user or None,
        password=opts.password if opts.user else None,
        timeout=opts.timeout,
        verify=opts.ca or True,
        client_cert=opts.client_cert or None,
    )


def _connection_options() -> list[click.Option]:
    """Fresh option objects (one set per command)."""
    return [
        click.Option(["--url"], metavar="URL", help="Server SOAP endpoint (https://host:port/)."),
        click.Option(["--user"], metavar="NAME", help="WS-Security user name."),
        click.Option(
            ["--password-env"],
            metavar="VAR",
            help="Read the password from environment variable VAR.",
        ),
        click.Option(
            ["--password-file"],
            type=click.Path(path_type=Path, dir_okay=False),
            help="Read the password from the first line of FILE.",
        ),
        click.Option(
            ["--ca"],
            type=click.Path(path_type=Path, dir_okay=False),
            help="CA bundle (PEM) to verify the server's TLS certificate.",
        ),
        click.Option(
            ["--timeout"], type=float, metavar="SECONDS", help="Seconds per call (default 30)."
        ),
        click.Option(
            ["--client-config"],
            type=click.Path(path_type=Path, dir_okay=False),
            help="Client configuration file (INI, section [client]).",
        ),
        click.Option(
            ["--json", "as_json"],
            is_flag=True,
            help="Print JSON (stable format, see docs/client.md).",
        ),
    ]


_CONNECTION_NAMES = (
    "url",
    "user",
    "password_env",
    "password_file",
    "ca",
    "timeout",
    "client_config",
)


def with_client(func: F) -> F:
    """Add the connection options (and ``--json``) to a command and call it as
    ``func(client, as_json, ...)`` with a connected :class:`AttestationClient`.

    Apply it under :func:`soapattest.cli.common.cli_errors`; failures that are not
    soapattest errors become one line on stderr too (``--debug`` logs the traceback).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        conn = {name: kwargs.pop(name) for name in _CONNECTION_NAMES}
        as_json = kwargs.pop("as_json")
        opts = resolve_options(**conn)
        try:
            with make_client(opts) as client:
                return func(client, as_json, *args, **kwargs)
        except (
            SoapAttestError,
            OSError,
            click.exceptions.ClickException,
            click.exceptions.Exit,
            click.exceptions.Abort,
        ):
            raise
        except Exception as exc:
            log.debug("unexpected failure", exc_info=True)
            raise SoapAttestError(
                f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)"
            ) from exc

    own = list(getattr(func, "__click_params__", []))
    # click shows parameters in reverse order of attachment: ours go last in --help.
    wrapper.__click_params__ = list(reversed(_connection_options())) + own  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
