"""The service schema shared by threads: each validation reports its own errors."""

from __future__ import annotations

import threading

from lxml import etree

from soapattest.service.app import build_application
from soapattest.service.validation import SharedSchema

NS = "urn:soapattest:v1"
APP = build_application(None)


def _attest(name: str) -> etree._Element:
    return etree.fromstring(
        f'<w xmlns:t="{NS}"><t:AttestHost><t:host>{name}</t:host></t:AttestHost></w>'
    )[0]


def _mismatches(schema: object, threads: int = 4, rounds: int = 400) -> int:
    """Validations whose verdict or error text is not their own document's."""
    wrong = [0] * threads

    def run(i: int) -> None:
        name = f"bad!{i}"  # the pattern refuses '!': each thread's error names its value
        doc = _attest(name)
        for _ in range(rounds):
            ok = schema.validate(doc)  # type: ignore[attr-defined]
            message = str(schema.error_log.last_error)  # type: ignore[attr-defined]
            if ok or name not in message:
                wrong[i] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(wrong)


def test_the_application_schema_is_shared_safely() -> None:
    assert isinstance(APP.in_protocol.validation_schema, SharedSchema)
    assert _mismatches(APP.in_protocol.validation_schema) == 0


def test_a_valid_document_validates_with_no_errors() -> None:
    schema = APP.in_protocol.validation_schema
    assert schema.validate(_attest("h1")) is True
    assert schema.error_log.last_error is None
    assert schema.validate(_attest("bad!")) is False
    assert "bad!" in str(schema.error_log.last_error)
