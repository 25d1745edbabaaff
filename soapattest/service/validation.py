"""The service's XML Schema, safe to share between a worker's threads.

lxml keeps one error log per ``XMLSchema`` object. Validations running at the
same time in several threads overwrite each other's errors, so a
``Client.SchemaValidationError`` fault could carry text - values included - of
another caller's request (measured: about one fault in ten with four threads).
:class:`SharedSchema` validates one document at a time per process and hands
each thread a copy of its own errors. Validation releases the GIL, takes well
under a millisecond for the largest requests, and a worker runs a handful of
threads, so the lock costs little.
"""

from __future__ import annotations

import threading
from typing import Any

from lxml import etree


class SharedSchema:
    """An ``etree.XMLSchema`` with the two members Spyne and the direct dispatch use:
    :meth:`validate` and :attr:`error_log` (the errors of this thread's last call)."""

    def __init__(self, schema: etree.XMLSchema) -> None:
        self._schema = schema
        self._lock = threading.Lock()
        self._local = threading.local()
        self._empty = schema.error_log.copy()

    def validate(self, document: Any) -> bool:
        """True when ``document`` (an element or tree) is valid; the errors of this call
        are then in :attr:`error_log`, for this thread only."""
        with self._lock:
            ok = bool(self._schema.validate(document))
            self._local.errors = self._schema.error_log.copy()
        return ok

    @property
    def error_log(self) -> Any:
        """The error log of this thread's last :meth:`validate`."""
        return getattr(self._local, "errors", self._empty)
