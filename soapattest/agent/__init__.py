"""The trust agent: a small SOAP service next to a TPM 2.0.

Modules: ``tpm`` (the only tpm2-pytss ESAPI user in soapattest), ``tpmtypes``
(its result types, pure), ``templates`` (EK / AK templates), ``backend`` (the
operations, argument validation), ``service`` (Spyne SOAP binding),
``httpserver`` (threaded WSGI server and request guard), ``logs`` (event log /
IMA list reading), ``config`` and ``main`` (the ``soapattest-agent`` command),
``wsdl`` (WSDL generation).
"""
