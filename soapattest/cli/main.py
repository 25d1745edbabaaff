"""``soapattest``: the command line of the attestation server.

Local commands (no server needed): ``eventlog``, ``ima``.
"""

from __future__ import annotations

import logging

import click

from soapattest import __version__
from soapattest.cli.eventlog import eventlog
from soapattest.cli.ima import ima
from soapattest.cli.serve import db, serve
from soapattest.cli.sim import sim


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="soapattest")
@click.option("--debug", is_flag=True, help="Log debug messages (and tracebacks) on stderr.")
def cli(debug: bool) -> None:
    """soapattest: remote attestation for trusted compute pools (TPM 2.0, SOAP/WSDL)."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


cli.add_command(eventlog)
cli.add_command(ima)
cli.add_command(sim)
cli.add_command(serve)
cli.add_command(db)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="soapattest")
