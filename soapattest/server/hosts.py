"""Host management use cases other than registration: update and delete, audited."""

from __future__ import annotations

from collections.abc import Mapping

from soapattest.model import Host
from soapattest.server import validate
from soapattest.server.audit import audited
from soapattest.server.context import ServerContext


def update_host(
    ctx: ServerContext,
    actor: str,
    name: str,
    *,
    agent_url: str | None = None,
    pool: str | None = None,
    labels: Mapping[str, str] | None = None,
    description: str | None = None,
) -> Host:
    """Change a host's agent URL, pool, labels or description (never its identity)."""
    validate.name(name, "host")
    url = validate.agent_url(agent_url) if agent_url is not None else None
    new_pool = validate.optional_name(pool, "pool") if pool is not None else None
    new_labels = validate.labels(labels) if labels is not None else None
    desc = validate.text(description, "description") if description is not None else None
    shown = {
        k: v
        for k, v in {
            "agent_url": url,
            "pool": new_pool,
            "labels": new_labels,
            "description": desc,
        }.items()
        if v is not None
    }
    with audited(ctx, actor, "host.update", "host", name, {"changes": shown}) as audit:
        with ctx.store.transaction() as tx:
            host = tx.hosts.update(
                name,
                agent_url=url,
                pool=new_pool,
                labels=new_labels,
                description=desc,
                now=ctx.clock(),
            )
            audit.record(tx)
        return host


def delete_host(ctx: ServerContext, actor: str, name: str) -> None:
    """Delete a host; its reports and identity history stay, the name can be reused."""
    validate.name(name, "host")
    with audited(ctx, actor, "host.delete", "host", name) as audit:
        with ctx.store.transaction() as tx:
            tx.hosts.delete(name, ctx.clock())
            audit.record(tx)
