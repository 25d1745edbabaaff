"""``soapattest``: the command line of the attestation server.

Local commands (no server needed): ``eventlog``, ``ima``.
Client commands (talk to a server over SOAP): ``host``, ``attest``, ``poll``,
``nonce``, ``whitelist``, ``policy``, ``report``, ``assertion``, ``pool``,
``placement``, ``audit`` (see :mod:`soapattest.cli.connect`, docs/client.md).
"""

from __future__ import annotations

import logging

import click

from soapattest import __version__
from soapattest.cli.connect import CLIENT_HELP
from soapattest.cli.demo import demo
from soapattest.cli.eventlog import eventlog
from soapattest.cli.golden import policy, whitelist
from soapattest.cli.hosts import attest, host, nonce, poll
from soapattest.cli.ima import ima
from soapattest.cli.serve import db, serve
from soapattest.cli.sim import sim
from soapattest.cli.trust import assertion, audit, placement, pool, report
from soapattest.cli.user import user


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=CLIENT_HELP)
@click.version_option(__version__, prog_name="soapattest")
@click.option("--debug", is_flag=True, help="Log debug messages (and tracebacks) on stderr.")
def cli(debug: bool) -> None:
    """soapattest: remote attestation for trusted compute pools (TPM 2.0, SOAP/WSDL)."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


cli.add_command(demo)
cli.add_command(eventlog)
cli.add_command(ima)
cli.add_command(sim)
cli.add_command(user)
cli.add_command(serve)
cli.add_command(db)
# Client commands (connection settings: soapattest.cli.connect)
for _command in (host, attest, poll, nonce, whitelist, policy, report, assertion, pool,
                 placement, audit):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="soapattest")
