"""Quote verification cost: soapattest's parse + verify vs a bare ``cryptography`` verify.

Run: ``.venv/bin/python bench/bench_quote.py [--seconds 2]``. For an ECDSA
P-256 and an RSA-2048 (RSASSA) attestation key (software keys, quotes built
with soapattest.tpm.marshal), prints the time per operation of

* ``bare verify``: cryptography's verify over the same TPMS_ATTEST bytes with
  the signature already in the library's format (the floor, measured in this
  run);
* ``parse+verify``: ``parse_attest`` + ``parse_signature`` +
  ``verify_signature`` (what the server does per quote) - the ratio to the
  floor is the figure to watch (goal <= 1.3x);
* its parts, and ``parse_public+key`` (loading the AK from TPM2B_PUBLIC, done
  once per host, not per quote).

Timings are the best of many rounds run in alternation, so machine noise
hits every row alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402

from soapattest.tpm.attest import ClockInfo, parse_attest  # noqa: E402
from soapattest.tpm.constants import TpmAlg  # noqa: E402
from soapattest.tpm.marshal import (  # noqa: E402
    build_public_ecc,
    build_public_rsa,
    build_quote,
    sign_ecdsa,
    sign_rsa,
)
from soapattest.tpm.pcr import PcrSelection  # noqa: E402
from soapattest.tpm.public import parse_public  # noqa: E402
from soapattest.tpm.signature import parse_signature, verify_signature  # noqa: E402

BATCH = 20  # calls per timed sample (small: a sample must fit between preemptions)


def best_per_call(funcs: list[Callable[[], object]], seconds: float) -> list[float]:
    """Best time per call of each function (batches run in alternation until ``seconds``)."""
    best = [float("inf")] * len(funcs)
    deadline = time.perf_counter() + seconds
    while True:
        for i, func in enumerate(funcs):
            start = time.perf_counter()
            for _ in range(BATCH):
                func()
            best[i] = min(best[i], (time.perf_counter() - start) / BATCH)
        if time.perf_counter() > deadline:
            return best


def quote_bytes() -> bytes:
    """A realistic quote: 24 SHA-256 PCRs and 24 SHA-1 PCRs, a 32-byte nonce."""
    return build_quote(
        pcr_select=PcrSelection.from_mapping({"sha256": range(24), "sha1": range(24)}),
        pcr_digest=os.urandom(32),
        extra_data=os.urandom(32),
        qualified_signer=b"\x00\x0b" + os.urandom(32),
        clock_info=ClockInfo(123456789, 7, 3, True),
        firmware_version=0x2000_0000_0001_0002,
    )


def cases() -> list[tuple[str, dict[str, Callable[[], object]]]]:
    """Per key kind: the functions to time (``bare verify`` first)."""
    out: list[tuple[str, dict[str, Callable[[], object]]]] = []
    attest = quote_bytes()

    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pub_bytes = build_public_ecc(ec_key.public_key())
    ec_ak = parse_public(ec_pub_bytes)
    ec_pub = ec_ak.public_key()
    ec_sig = sign_ecdsa(ec_key, attest, TpmAlg.SHA256)
    parsed = parse_signature(ec_sig)
    assert parsed.ecdsa_r is not None and parsed.ecdsa_s is not None
    der = encode_dss_signature(parsed.ecdsa_r, parsed.ecdsa_s)
    ecdsa = ec.ECDSA(hashes.SHA256())
    assert isinstance(ec_pub, ec.EllipticCurvePublicKey)

    def ec_full() -> None:
        a = parse_attest(attest)
        s = parse_signature(ec_sig)
        verify_signature(
            ec_pub, s, a.raw, expected_sig_alg=ec_ak.scheme, expected_hash_alg=ec_ak.scheme_hash
        )

    out.append(
        (
            "ECDSA P-256",
            {
                "bare verify": lambda: ec_pub.verify(der, attest, ecdsa),
                "parse+verify": ec_full,
                "  parse_attest": lambda: parse_attest(attest),
                "  parse_signature": lambda: parse_signature(ec_sig),
                "  verify_signature": lambda: verify_signature(
                    ec_pub,
                    parsed,
                    attest,
                    expected_sig_alg=TpmAlg.ECDSA,
                    expected_hash_alg=TpmAlg.SHA256,
                ),
                "parse_public+key": lambda: parse_public(ec_pub_bytes).public_key(),
            },
        )
    )

    rsa_key = rsa.generate_private_key(65537, 2048)
    rsa_pub_bytes = build_public_rsa(rsa_key.public_key())
    rsa_ak = parse_public(rsa_pub_bytes)
    rsa_pub = rsa_ak.public_key()
    rsa_sig = sign_rsa(rsa_key, attest, TpmAlg.SHA256)
    rparsed = parse_signature(rsa_sig)
    assert rparsed.rsa_signature is not None and isinstance(rsa_pub, rsa.RSAPublicKey)
    raw_rsa = rparsed.rsa_signature
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def rsa_full() -> None:
        a = parse_attest(attest)
        s = parse_signature(rsa_sig)
        verify_signature(
            rsa_pub, s, a.raw, expected_sig_alg=rsa_ak.scheme, expected_hash_alg=rsa_ak.scheme_hash
        )

    out.append(
        (
            "RSA-2048 RSASSA",
            {
                "bare verify": lambda: rsa_pub.verify(raw_rsa, attest, pkcs1, sha256),
                "parse+verify": rsa_full,
                "  parse_attest": lambda: parse_attest(attest),
                "  parse_signature": lambda: parse_signature(rsa_sig),
                "  verify_signature": lambda: verify_signature(
                    rsa_pub,
                    rparsed,
                    attest,
                    expected_sig_alg=TpmAlg.RSASSA,
                    expected_hash_alg=TpmAlg.SHA256,
                ),
                "parse_public+key": lambda: parse_public(rsa_pub_bytes).public_key(),
            },
        )
    )
    return out


def main() -> None:
    """Time every case and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="time budget per key kind")
    args = ap.parse_args()
    print(f"{'key':<16} {'operation':<20} {'us/op':>9} {'x bare':>8}")
    print("-" * 56)
    for kind, funcs in cases():
        names = list(funcs)
        times = best_per_call(list(funcs.values()), args.seconds)
        floor = times[0]
        for name, t in zip(names, times, strict=True):
            print(f"{kind:<16} {name:<20} {t * 1e6:9.2f} {t / floor:7.2f}x")
        ratio = times[1] / floor
        print(
            f"{kind:<16} {'=> overhead':<20} {(times[1] - floor) * 1e6:9.2f} {ratio:7.2f}x"
            f"  (goal <= 1.30x: {'met' if ratio <= 1.3 else 'NOT met'})"
        )
        print()


if __name__ == "__main__":
    main()
