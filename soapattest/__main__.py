"""``python -m soapattest`` runs the ``soapattest`` command line."""

from soapattest.cli.main import main

main()
