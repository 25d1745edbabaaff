"""Security of the attestation server: passwords, roles, WS-Security, XML hardening, TLS.

Small modules with one job each; the service layer plugs them in (see
``docs/security.md``):

- :mod:`~soapattest.security.passwords`: scrypt password hashes and a verifier
  with a bounded cache and bounded concurrency.
- :mod:`~soapattest.security.credentials`: the stored credential string of a user
  (scrypt hash, optionally a sealed secret for WSS PasswordDigest) and the server's
  digest key.
- :mod:`~soapattest.security.roles`: roles, the operation -> roles table,
  :func:`~soapattest.security.roles.authorize`.
- :mod:`~soapattest.security.nonces`: replay caches for UsernameToken nonces
  (in-process, or shared through the database).
- :mod:`~soapattest.security.wssecurity`: OASIS WSS UsernameToken Profile 1.1,
  server side (:class:`~soapattest.security.wssecurity.Authenticator`) and client side.
- :mod:`~soapattest.security.xmlguard`: the WSGI middleware in front of Spyne.
- :mod:`~soapattest.security.tls`: TLS contexts and certificate fingerprints.
"""
