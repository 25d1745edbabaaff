"""The store: SQLAlchemy 2.x tables, repositories and Alembic migrations.

The only place that knows SQL. Repositories take and return the frozen
dataclasses of :mod:`soapattest.model`; SQLAlchemy classes never leave this
package. Usage::

    store = Store("sqlite:///var/lib/soapattest/db.sqlite")   # or postgresql://...
    store.upgrade()
    with store.transaction() as tx:
        tx.hosts.add(host, now)
        tx.audit.record(actor=..., action="host.register", ..., at=now)
"""

from soapattest.store.store import Store, Tx

__all__ = ["Store", "Tx"]
