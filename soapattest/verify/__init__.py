"""The trust engine: pure functions from evidence and policy to a trust report.

No network, database or clock access: evidence arrives as bytes, time as an
argument. Every check yields a named :class:`~soapattest.model.Check`.
"""
