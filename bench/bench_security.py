"""Costs of the security layer: scrypt hashes, UsernameToken checks, the XML guard.

Run: ``.venv/bin/python bench/bench_security.py [--rounds 5]``.

Rows (each with a baseline measured in the same run, so machine noise cancels):

* scrypt at n = 2**14 .. 2**17 (r=8, p=1): ms per hash and memory, ratio to
  n = 2**14 (the RFC 7914 "interactive login" setting);
* PasswordText check: first check (one scrypt at the default n = 2**15), then
  a cached check; PasswordDigest check (AES-GCM unseal + SHA-1); ratio to one
  plain SHA-256 of the token bytes;
* XmlGuard on a 1 MiB SOAP request vs a bare ``lxml.etree.fromstring`` of it.

Best of ``--rounds`` batches; finishes in well under a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402

from soapattest.model import User  # noqa: E402
from soapattest.security.credentials import DigestKey, new_credential  # noqa: E402
from soapattest.security.nonces import MemoryNonceCache  # noqa: E402
from soapattest.security.passwords import ScryptParams, hash_password  # noqa: E402
from soapattest.security.wssecurity import Authenticator, build_security_header  # noqa: E402
from soapattest.security.xmlguard import SOAP11_ENV, XmlGuard  # noqa: E402

PASSWORD = "correct horse battery staple"  # noqa: S105 - a benchmark input


def best(func: Callable[[], object], rounds: int, per: int = 1) -> float:
    """Best seconds per call over ``rounds`` batches of ``per`` calls."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per):
            func()
        times.append((time.perf_counter() - start) / per)
    return min(times)


def bench_scrypt(rounds: int) -> None:
    print("scrypt (r=8, p=1)                ms/hash    MiB   x n=2**14")
    base = best(lambda: hash_password(PASSWORD, params=ScryptParams(n=2**14)), rounds)
    for log_n in (14, 15, 16, 17):
        params = ScryptParams(n=2**log_n)
        t = best(lambda p=params: hash_password(PASSWORD, params=p), rounds)  # type: ignore[misc]
        print(f"  n=2**{log_n}{' (default)' if log_n == 15 else '          '}"
              f"          {t * 1000:8.1f} {params.memory >> 20:6d} {t / base:9.2f}")


class _Users:
    def __init__(self, key: DigestKey) -> None:
        self.user = User("alice", new_credential("alice", PASSWORD, digest_key=key), ("admin",))

    def find(self, name: str) -> User | None:
        return self.user if name == "alice" else None


def bench_tokens(rounds: int) -> None:
    key = DigestKey(os.urandom(32))
    users = _Users(key)
    now = datetime.now(UTC)
    raw = etree.tostring(build_security_header("alice", PASSWORD))
    base = best(lambda: hashlib.sha256(raw).digest(), rounds, per=2000)

    def text_check(auth: Authenticator) -> None:
        auth.authenticate(build_security_header("alice", PASSWORD, mode="text", now=now),
                          users=users, now=now, secure=True)

    def digest_check(auth: Authenticator) -> None:
        auth.authenticate(build_security_header("alice", PASSWORD, now=now), users=users,
                          now=now, secure=False)

    first = best(lambda: text_check(Authenticator(nonce_cache=MemoryNonceCache(),
                                                  digest_key=key)), rounds)
    cached_auth = Authenticator(nonce_cache=MemoryNonceCache(1_000_000), digest_key=key)
    text_check(cached_auth)
    cached = best(lambda: text_check(cached_auth), rounds, per=200)
    digest_auth = Authenticator(nonce_cache=MemoryNonceCache(1_000_000), digest_key=key)
    digest = best(lambda: digest_check(digest_auth), rounds, per=200)
    print("UsernameToken check              ms/check        x sha256(token)")
    for label, t in (("PasswordText, first (scrypt)", first), ("PasswordText, cached", cached),
                     ("PasswordDigest", digest)):
        print(f"  {label:30s} {t * 1000:10.3f} {t / base:15.0f}")


def bench_guard(rounds: int) -> None:
    entries = "".join(f"<t:e><t:n>file-{i}</t:n><t:d>{'ab' * 32}</t:d></t:e>"
                      for i in range(7000))
    doc = (f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP11_ENV}" '
           f'xmlns:t="urn:soapattest:v1"><soap:Body><t:AddWhitelistEntries>{entries}'
           "</t:AddWhitelistEntries></soap:Body></soap:Envelope>").encode()

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    guard = XmlGuard(app, max_bytes=4 << 20, service_namespace="urn:soapattest:v1")

    def guarded() -> None:
        environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(doc)),
                   "CONTENT_TYPE": "text/xml", "wsgi.input": io.BytesIO(doc)}
        guard(environ, lambda *a: None)

    base = best(lambda: etree.fromstring(doc), rounds, per=5)
    t = best(guarded, rounds, per=5)
    print(f"XmlGuard on {len(doc) >> 10} KiB                 ms/request  x lxml.fromstring")
    print(f"  lxml.fromstring (baseline)    {base * 1000:10.2f} {1:10.2f}")
    print(f"  XmlGuard (read, checks, parse) {t * 1000:9.2f} {t / base:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bench_scrypt(args.rounds)
    bench_tokens(args.rounds)
    bench_guard(args.rounds)


if __name__ == "__main__":
    main()
