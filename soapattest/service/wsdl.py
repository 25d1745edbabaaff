"""Generate the service's WSDL (committed as ``wsdl/soapattest.wsdl``).

``python -m soapattest.service.wsdl > wsdl/soapattest.wsdl`` regenerates it;
``tests/unit/test_service_wsdl.py`` fails when the committed file differs from
what the code generates. The committed file uses :data:`PLACEHOLDER_URL`.
"""

from __future__ import annotations

import sys

from soapattest import wsdl_canonical
from soapattest.service.app import build_application

PLACEHOLDER_URL = "http://localhost:8080/"


def generate_wsdl(url: str = PLACEHOLDER_URL) -> bytes:
    """The WSDL as served over HTTP, in canonical form, with SOAP address ``url``."""
    return wsdl_canonical.generate_wsdl(build_application(None), url)


def main() -> None:
    """Write the canonical WSDL to stdout."""
    sys.stdout.buffer.write(generate_wsdl())


if __name__ == "__main__":
    main()
