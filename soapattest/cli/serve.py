"""``soapattest serve`` and ``soapattest db``: run the attestation server, migrate its store."""

from __future__ import annotations

import os
from pathlib import Path

import click

from soapattest.cli.common import cli_errors, echo_json
from soapattest.server.config import ServerConfig, load_config

CONFIG_HELP = (
    "Server configuration file (INI). Default: $SOAPATTEST_CONFIG. Settings are taken from "
    "built-in defaults, then this file, then SOAPATTEST_<SECTION>_<KEY> variables, then flags."
)


def load(config: Path | None, **overrides: object) -> ServerConfig:
    """The configuration from ``config`` (or $SOAPATTEST_CONFIG), environment and flags."""
    path = config or (
        Path(os.environ["SOAPATTEST_CONFIG"]) if "SOAPATTEST_CONFIG" in os.environ else None
    )
    return load_config(path, overrides={k: v for k, v in overrides.items() if v is not None})


@click.command()
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help=CONFIG_HELP
)
@click.option("--listen", help="host:port to listen on (overrides [server] listen).")
@click.option("--workers", type=int, help="Worker processes (overrides [server] workers).")
@click.option("--database-url", help="SQLAlchemy URL (overrides [database] url).")
@cli_errors
def serve(
    config_path: Path | None, listen: str | None, workers: int | None, database_url: str | None
) -> None:
    """Run the attestation server (gunicorn, N workers) until interrupted.

    The database is migrated first; the WSDL is at <url>?wsdl.
    """
    from soapattest.service.wsgi import serve as run

    host = port = None
    if listen:
        host, _, port_text = listen.rpartition(":")
        port = int(port_text) if port_text.isdigit() else None
        if not host or port is None:
            raise click.BadParameter("expected host:port", param_hint="--listen")
    cfg = load(
        config_path, listen_host=host, listen_port=port, workers=workers, database_url=database_url
    )
    run(cfg)


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help=CONFIG_HELP
)
@click.option("--database-url", help="SQLAlchemy URL (overrides the configuration).")
@cli_errors
def upgrade(config_path: Path | None, database_url: str | None) -> None:
    """Migrate the database schema to the newest revision (idempotent)."""
    from soapattest.store import Store  # imported here: keeps client commands quick to start

    cfg = load(config_path, database_url=database_url)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with Store(cfg.db_url) as store:
        store.upgrade()
        echo_json({"database": store.display_url, "revision": store.current_revision()})
