"""Generate the trust agent's WSDL from the code, in a stable (diffable) form.

``python -m soapattest.agent.wsdl > wsdl/agent.wsdl`` regenerates the
committed file; ``tests/unit/test_agent_wsdl.py`` fails when the two differ.

Spyne emits schema types in hash order (it changes with PYTHONHASHSEED), so
:func:`canonical_wsdl` sorts the schema children (simple types, complex types,
elements, each by name) and pretty-prints; the committed file uses the
placeholder address :data:`PLACEHOLDER_URL`.
"""

from __future__ import annotations

import sys

from soapattest import wsdl_canonical

PLACEHOLDER_URL = "http://localhost:9290/"


def canonical_wsdl(document: bytes, *, location: str | None = PLACEHOLDER_URL) -> bytes:
    """The agent WSDL in canonical form (see :mod:`soapattest.wsdl_canonical`)."""
    return wsdl_canonical.canonical_wsdl(document, location=location)


def generate_wsdl(url: str = PLACEHOLDER_URL) -> bytes:
    """The agent's WSDL as served over HTTP, in canonical form, with address ``url``."""
    from soapattest.agent.service import build_application

    return wsdl_canonical.generate_wsdl(build_application(None), url)


def main() -> None:
    """Write the canonical WSDL to stdout."""
    sys.stdout.buffer.write(generate_wsdl())


if __name__ == "__main__":
    main()
