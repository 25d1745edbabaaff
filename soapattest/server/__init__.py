"""The attestation server's application core: use cases between the SOAP layer and the engine.

``service/`` (Spyne) decodes a request and calls one function here; these
functions orchestrate the store (``store/``), the pure engine (``verify/``)
and the hosts' agents (:mod:`soapattest.server.agents`), and audit every
change and every trust decision. Nothing here knows SOAP.
"""
