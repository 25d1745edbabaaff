# mypy: allow-subclassing-any, allow-untyped-decorators
"""Whitelist, policy and pool operations."""

from __future__ import annotations

from typing import Any

from spyne import rpc
from spyne.model.primitive import Boolean, UnsignedInteger32

from soapattest.model import EntryKind
from soapattest.server import golden, validate
from soapattest.service import convert
from soapattest.service import types as t
from soapattest.service.base import actor, server

MAX_ENTRIES = 100_000


class WhitelistOperations:
    """Whitelists of golden measurements (versioned: every change is a new version)."""

    @rpc(
        t.req(t.Name),
        t.opt(t.Text),
        t.many(t.WhitelistEntry, min_occurs=1, max_occurs=MAX_ENTRIES),
        _returns=t.Whitelist,
        _out_variable_name="whitelist",
    )
    def CreateWhitelist(ctx: Any, name: str, description: str | None, entry: Any) -> t.Whitelist:
        """Create version 1 of a whitelist. Faults: Client.AlreadyExists, Client.InvalidArgument."""
        wl = golden.create_whitelist(
            server(ctx), actor(ctx), name, convert.entries_in(entry), description or ""
        )
        return convert.whitelist_out(wl)

    @rpc(
        t.req(t.Name),
        t.opt(UnsignedInteger32, doc="Version (default: the latest)."),
        _returns=t.Whitelist,
        _out_variable_name="whitelist",
    )
    def GetWhitelist(ctx: Any, name: str, version: int | None) -> t.Whitelist:
        """One version of a whitelist with its entries. Faults: Client.WhitelistNotFound."""
        validate.name(name, "name")
        with server(ctx).store.transaction(readonly=True) as tx:
            wl = tx.whitelists.get(name, int(version) if version is not None else None)
        return convert.whitelist_out(wl)

    @rpc(_returns=t.many(t.Whitelist), _out_variable_name="whitelist")
    def ListWhitelists(ctx: Any) -> list[t.Whitelist]:
        """The latest version of every whitelist (without entries; see entry_count)."""
        with server(ctx).store.transaction(readonly=True) as tx:
            wls = tx.whitelists.list()
        return [convert.whitelist_out(wl, with_entries=False) for wl in wls]

    @rpc(
        t.req(t.Name),
        t.many(t.WhitelistEntry, min_occurs=1, max_occurs=MAX_ENTRIES),
        t.opt(UnsignedInteger32, doc="Refuse unless this is the latest version."),
        _returns=t.Whitelist,
        _out_variable_name="whitelist",
    )
    def AddWhitelistEntries(
        ctx: Any, name: str, entry: Any, expected_version: int | None
    ) -> t.Whitelist:
        """Add entries in a new version.

        Faults: Client.WhitelistNotFound, Client.VersionConflict.
        """
        wl = golden.change_entries(
            server(ctx),
            actor(ctx),
            name,
            convert.entries_in(entry),
            add=True,
            expected_version=expected_version,
        )
        return convert.whitelist_out(wl)

    @rpc(
        t.req(t.Name),
        t.many(t.WhitelistEntry, min_occurs=1, max_occurs=MAX_ENTRIES),
        t.opt(UnsignedInteger32, doc="Refuse unless this is the latest version."),
        _returns=t.Whitelist,
        _out_variable_name="whitelist",
    )
    def RemoveWhitelistEntries(
        ctx: Any, name: str, entry: Any, expected_version: int | None
    ) -> t.Whitelist:
        """Remove entries in a new version. Faults: Client.WhitelistNotFound,
        Client.VersionConflict, Client.InvalidArgument (entry not present)."""
        wl = golden.change_entries(
            server(ctx),
            actor(ctx),
            name,
            convert.entries_in(entry),
            add=False,
            expected_version=expected_version,
        )
        return convert.whitelist_out(wl)

    @rpc(t.req(t.Name), _returns=Boolean, _out_variable_name="deleted")
    def DeleteWhitelist(ctx: Any, name: str) -> bool:
        """Delete a whitelist (refused while a policy uses it: Client.InUse)."""
        golden.delete_whitelist(server(ctx), actor(ctx), name)
        return True

    @rpc(
        t.req(t.Name, doc="The known-good host to capture from."),
        t.req(t.Name, doc="The whitelist to create or version."),
        t.many(t.PcrIndex, min_occurs=1, max_occurs=24),
        t.many(t.Bank, max_occurs=5, doc="Banks to capture (default sha256)."),
        t.many(t.EntryKind, max_occurs=2, doc="pcr and/or event (default both)."),
        t.opt(t.ImportMode, doc="Default CREATE."),
        t.opt(t.Text),
        _returns=t.Whitelist,
        _out_variable_name="whitelist",
    )
    def ImportWhitelistFromHost(
        ctx: Any,
        host: str,
        name: str,
        pcr: Any,
        bank: Any,
        kind: Any,
        mode: str | None,
        description: str | None,
    ) -> t.Whitelist:
        """Capture golden values from a known-good host: PCR values from a fresh verified
        quote, event digests only from PCRs whose log replays to that quote.

        Faults: Client.UnknownHost, Client.InvalidQuote, Client.InvalidPolicy (log does not
        replay), Client.AlreadyExists (mode CREATE), Server.AgentUnreachable.
        """
        wl = golden.import_whitelist_from_host(
            server(ctx),
            actor(ctx),
            host=host,
            name=name,
            pcrs=[int(p) for p in pcr],
            banks=list(bank or ["sha256"]),
            kinds=[EntryKind(k) for k in (kind or ["pcr", "event"])],
            mode=golden.ImportMode(mode or "CREATE"),
            description=description or "",
        )
        return convert.whitelist_out(wl)


class PolicyOperations:
    """Policies (versioned) and their assignment to hosts and pools."""

    @rpc(t.req(t.Policy), _returns=t.Policy, _out_variable_name="policy")
    def CreatePolicy(ctx: Any, policy: Any) -> t.Policy:
        """Create version 1 of a policy. Whitelists must exist and have entries in the
        policy's banks. Faults: Client.AlreadyExists, Client.InvalidPolicy,
        Client.WhitelistNotFound."""
        stored = golden.create_policy(server(ctx), actor(ctx), convert.policy_in(policy))
        return convert.policy_out(stored)

    @rpc(
        t.req(t.Policy),
        t.opt(UnsignedInteger32, doc="Refuse unless this is the latest version."),
        _returns=t.Policy,
        _out_variable_name="policy",
    )
    def UpdatePolicy(ctx: Any, policy: Any, expected_version: int | None) -> t.Policy:
        """A new version of a policy. Faults: Client.PolicyNotFound, Client.VersionConflict."""
        stored = golden.create_policy(
            server(ctx),
            actor(ctx),
            convert.policy_in(policy),
            update=True,
            expected_version=expected_version,
        )
        return convert.policy_out(stored)

    @rpc(t.req(t.Name), t.opt(UnsignedInteger32), _returns=t.Policy, _out_variable_name="policy")
    def GetPolicy(ctx: Any, name: str, version: int | None) -> t.Policy:
        """One version of a policy (default latest). Faults: Client.PolicyNotFound."""
        validate.name(name, "name")
        with server(ctx).store.transaction(readonly=True) as tx:
            return convert.policy_out(
                tx.policies.get(name, int(version) if version is not None else None)
            )

    @rpc(_returns=t.many(t.Policy), _out_variable_name="policy")
    def ListPolicies(ctx: Any) -> list[t.Policy]:
        """The latest version of every policy."""
        with server(ctx).store.transaction(readonly=True) as tx:
            return [convert.policy_out(p) for p in tx.policies.list()]

    @rpc(t.req(t.Name), _returns=Boolean, _out_variable_name="deleted")
    def DeletePolicy(ctx: Any, name: str) -> bool:
        """Delete a policy (refused while assigned: Client.InUse)."""
        golden.delete_policy(server(ctx), actor(ctx), name)
        return True

    @rpc(
        t.opt(t.Name, doc="The policy; absent removes the assignment."),
        t.opt(t.Name, doc="Assign to this host ..."),
        t.opt(t.Name, doc="... or to this pool (exactly one of host and pool)."),
        _returns=Boolean,
        _out_variable_name="assigned",
    )
    def AssignPolicy(ctx: Any, policy: str | None, host: str | None, pool: str | None) -> bool:
        """Assign a policy to a host or a pool (a host's own policy wins over its pool's)."""
        golden.assign_policy(server(ctx), actor(ctx), policy, host=host or "", pool=pool or "")
        return True

    @rpc(_returns=t.many(t.PoolInfo), _out_variable_name="pool")
    def ListPools(ctx: Any) -> list[t.PoolInfo]:
        """Pools with their policy and number of hosts."""
        with server(ctx).store.transaction(readonly=True) as tx:
            pools = tx.pools.list()
        return [t.PoolInfo(name=n, policy=p, host_count=c) for n, p, c in pools]
