"""Shared plumbing for the ``soapattest`` command line: error reporting, JSON output."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from soapattest.errors import SoapAttestError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2  # malformed input, refused request (Client.* faults)
EXIT_FAILURE = 1  # our side or a peer failed (Server.* faults), or an untrusted result

log = logging.getLogger("soapattest.cli")


def fail(message: str, status: int = EXIT_BAD_INPUT) -> None:
    """Print one line on stderr and exit with ``status``."""
    click.echo(f"soapattest: {message}", err=True)
    sys.exit(status)


def cli_errors(func: F) -> F:
    """Turn soapattest errors and OS errors into one stderr line and an exit status.

    ``Client.*`` errors (bad input) exit with 2, everything else with 1.
    No traceback reaches the terminal; ``--debug`` on the main group logs it.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SoapAttestError as exc:
            log.debug("command failed", exc_info=True)
            status = EXIT_BAD_INPUT if exc.code.startswith("Client.") else EXIT_FAILURE
            fail(f"{exc.code}: {exc.message}", status)
        except OSError as exc:
            log.debug("command failed", exc_info=True)
            fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), EXIT_BAD_INPUT)
        return None

    return wrapper  # type: ignore[return-value]


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON with sorted keys."""
    click.echo(json.dumps(value, indent=2, sort_keys=True))
