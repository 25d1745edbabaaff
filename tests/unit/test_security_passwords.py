"""scrypt password hashes, the new-password policy and the caching verifier."""

from __future__ import annotations

import base64
import hashlib

import pytest

from soapattest.errors import CredentialFormatError, WeakPasswordError
from soapattest.security.passwords import (
    DEFAULT_PARAMS,
    MAX_PASSWORD_BYTES,
    PasswordVerifier,
    ScryptParams,
    check_new_password,
    hash_password,
    needs_rehash,
    parse_hash,
    verify_password,
)

FAST = ScryptParams(n=2**10, r=8, p=1)  # cheap parameters for most tests
PASSWORD = "correct horse battery staple"


def test_default_hash_format_and_verification() -> None:
    encoded = hash_password(PASSWORD)
    scheme, n, r, p, salt, digest = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**15), "8", "1")
    assert len(base64.b64decode(salt)) == 16
    # the stored hash is exactly scrypt over the UTF-8 password with that salt
    expected = hashlib.scrypt(PASSWORD.encode(), salt=base64.b64decode(salt), n=2**15, r=8, p=1,
                              maxmem=64 * 1024 * 1024, dklen=32)
    assert base64.b64decode(digest) == expected
    assert verify_password(PASSWORD, encoded) is True
    assert needs_rehash(encoded) is False


def test_wrong_password_refused() -> None:
    encoded = hash_password(PASSWORD, params=FAST)
    assert verify_password(PASSWORD, encoded) is True
    assert verify_password(PASSWORD + " ", encoded) is False
    assert verify_password("", encoded) is False


def test_salt_makes_hashes_differ() -> None:
    assert hash_password(PASSWORD, params=FAST) != hash_password(PASSWORD, params=FAST)
    salt = b"s" * 16
    assert hash_password(PASSWORD, params=FAST, salt=salt) == hash_password(
        PASSWORD, params=FAST, salt=salt
    )


def test_non_ascii_password_round_trips() -> None:
    encoded = hash_password("pässwörd-ünïcode-🔑", params=FAST)
    assert verify_password("pässwörd-ünïcode-🔑", encoded) is True
    assert verify_password("passwörd-ünïcode-🔑", encoded) is False


def test_overlong_password_refused_without_hashing() -> None:
    long_pw = "x" * (MAX_PASSWORD_BYTES + 1)
    encoded = hash_password(long_pw, params=FAST)  # hashing itself does not refuse
    assert verify_password(long_pw, encoded) is False
    ok_pw = "x" * MAX_PASSWORD_BYTES
    assert verify_password(ok_pw, hash_password(ok_pw, params=FAST)) is True


def test_needs_rehash_for_other_parameters() -> None:
    weak = hash_password(PASSWORD, params=FAST)
    assert needs_rehash(weak) is True
    assert needs_rehash(weak, params=FAST) is False
    assert needs_rehash("md5$abc") is True


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "bcrypt$2b$12$abc",
        "scrypt$32768$8$1$c2FsdA==",  # too few parts
        "scrypt$32768$8$1$!!!!$AAAA",  # salt not base64
        "scrypt$32768$8$1$c2FsdA==$" + base64.b64encode(b"h" * 32).decode(),  # 4-byte salt
        "scrypt$1000$8$1$" + base64.b64encode(b"s" * 16).decode() + "$" + base64.b64encode(
            b"h" * 32).decode(),  # n not a power of two
        "scrypt$2097152$8$1$" + base64.b64encode(b"s" * 16).decode() + "$" + base64.b64encode(
            b"h" * 32).decode(),  # n = 2**21, above the bound
        "scrypt$-1$8$1$" + base64.b64encode(b"s" * 16).decode() + "$" + base64.b64encode(
            b"h" * 32).decode(),
    ],
)
def test_malformed_stored_hash(encoded: str) -> None:
    with pytest.raises(CredentialFormatError):
        verify_password(PASSWORD, encoded)


def test_parse_hash_positive_twin() -> None:
    parsed = parse_hash(hash_password(PASSWORD, params=FAST))
    assert parsed.params == FAST
    assert len(parsed.salt) == 16 and len(parsed.digest) == 32


def test_bad_salt_length_refused() -> None:
    with pytest.raises(CredentialFormatError):
        hash_password(PASSWORD, params=FAST, salt=b"short")


@pytest.mark.parametrize("params", [(2**9, 8, 1), (2**15, 0, 1), (2**15, 8, 0), (2**20, 32, 16)])
def test_params_out_of_bounds(params: tuple[int, int, int]) -> None:
    with pytest.raises(CredentialFormatError):
        ScryptParams(*params)


def test_default_params_memory() -> None:
    assert DEFAULT_PARAMS.memory == 32 * 1024 * 1024


@pytest.mark.parametrize(
    "password",
    ["short", "x" * 11, "tab\tinside-the-pw", " " * 20, "é" * 129],  # 129 * 2 bytes > 256
)
def test_weak_passwords_refused(password: str) -> None:
    with pytest.raises(WeakPasswordError) as info:
        check_new_password(password)
    assert password not in info.value.message


@pytest.mark.parametrize("password", ["x" * 12, "correct horse battery", "é" * 128])
def test_acceptable_passwords(password: str) -> None:
    check_new_password(password)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_verifier_caches_successes_only() -> None:
    clock = FakeClock()
    verifier = PasswordVerifier(cache_ttl=60, clock=clock)
    encoded = hash_password(PASSWORD, params=FAST)
    assert verifier.verify("alice", PASSWORD, encoded) is True
    assert verifier.verify("alice", PASSWORD, encoded) is True
    assert verifier.hashes_computed == 1  # second check served from the cache
    assert verifier.verify("alice", "wrong password!", encoded) is False
    assert verifier.verify("alice", "wrong password!", encoded) is False
    assert verifier.hashes_computed == 3  # failures are never cached


def test_verifier_cache_expires_and_follows_hash_changes() -> None:
    clock = FakeClock()
    verifier = PasswordVerifier(cache_ttl=60, clock=clock)
    encoded = hash_password(PASSWORD, params=FAST)
    assert verifier.verify("alice", PASSWORD, encoded)
    clock.now += 61
    assert verifier.verify("alice", PASSWORD, encoded)
    assert verifier.hashes_computed == 2
    # a new password means a new stored hash: the old cached success does not apply
    new_encoded = hash_password("another long password", params=FAST)
    assert verifier.verify("alice", PASSWORD, new_encoded) is False
    # and the cache entry is bound to the user name
    assert verifier.verify("mallory", PASSWORD, encoded) is True
    assert verifier.hashes_computed == 4


def test_cache_only_answers_never_hash() -> None:
    clock = FakeClock()
    verifier = PasswordVerifier(cache_ttl=60, clock=clock)
    encoded = hash_password(PASSWORD, params=FAST)
    assert not verifier.verified_recently("alice", PASSWORD)
    assert not verifier.verify_cached("alice", PASSWORD, encoded)
    assert verifier.hashes_computed == 0  # neither question hashes
    assert verifier.verify("alice", PASSWORD, encoded)
    assert verifier.verified_recently("alice", PASSWORD)
    assert verifier.verify_cached("alice", PASSWORD, encoded)
    # twins: another password, another user, another stored hash, an expired entry
    assert not verifier.verified_recently("alice", "wrong password!")
    assert not verifier.verified_recently("bob", PASSWORD)
    other = hash_password(PASSWORD, params=FAST)  # same password, new salt: a new hash
    assert not verifier.verify_cached("alice", PASSWORD, other)
    assert verifier.verified_recently("alice", PASSWORD)  # the hint is not about the hash
    clock.now += 61
    assert not verifier.verified_recently("alice", PASSWORD)
    assert not verifier.verify_cached("alice", PASSWORD, encoded)
    assert verifier.hashes_computed == 1


def test_verifier_cache_is_bounded() -> None:
    verifier = PasswordVerifier(cache_ttl=60, cache_size=1, clock=FakeClock())
    a = hash_password("password of a!", params=FAST)
    b = hash_password("password of b!", params=FAST)
    assert verifier.verify("a", "password of a!", a)
    assert verifier.verify("b", "password of b!", b)  # evicts a
    assert verifier.verify("a", "password of a!", a)
    assert verifier.hashes_computed == 3


def test_burn_spends_a_hash_and_fails() -> None:
    verifier = PasswordVerifier()
    assert verifier.burn(PASSWORD) is False
    assert verifier.hashes_computed == 1
