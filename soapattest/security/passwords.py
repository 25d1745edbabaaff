"""Password hashes: scrypt (RFC 7914) in a self-describing string, and a verifier.

Format: ``scrypt$<n>$<r>$<p>$<salt_b64>$<hash_b64>`` (standard base64 with
padding, 16-byte salt, 32-byte hash). The parameters travel with the hash, so
they can be raised later: :func:`needs_rehash` tells when a stored hash uses
weaker ones than the current default, and the next successful password check or
``soapattest user passwd`` can replace it.

Default parameters n=2**15, r=8, p=1: 32 MiB and about 150 ms per hash on a
2-core server (``bench/bench_security_passwords.py``). Stronger settings
(OWASP's n=2**17, 128 MiB) make every uncached PasswordText check cost that much
memory and time on the request path; :class:`PasswordVerifier` caches successful
checks and bounds how many run at once, so the choice can be raised without
exposing the server to a memory exhaustion by parallel logins.

Passwords are used as UTF-8 bytes exactly as given (no Unicode normalisation).
Nothing here logs a password or a hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from soapattest.errors import CredentialFormatError, WeakPasswordError

SCHEME = "scrypt"
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_BYTES = 256  # UTF-8; longer input is never a valid password (cheap refusal)
_MAX_MEMORY = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost parameters: ``n`` (CPU/memory cost, a power of two 2**10..2**20),
    ``r`` (block size, 1..32), ``p`` (parallelism, 1..16); memory is 128*n*r*p bytes,
    at most 512 MiB. Raises CredentialFormatError for values out of bounds."""

    n: int = 2**15
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        ok = (
            isinstance(self.n, int)
            and 2**10 <= self.n <= 2**20
            and self.n & (self.n - 1) == 0
            and isinstance(self.r, int)
            and 1 <= self.r <= 32
            and isinstance(self.p, int)
            and 1 <= self.p <= 16
            and self.memory <= _MAX_MEMORY
        )
        if not ok:
            raise CredentialFormatError(
                "scrypt parameters out of bounds (n a power of two 2**10..2**20, r 1..32, "
                "p 1..16, memory <= 512 MiB)",
                part="scrypt-params",
            )

    @property
    def memory(self) -> int:
        """Bytes of memory one hash computation needs."""
        return 128 * self.n * self.r * self.p


DEFAULT_PARAMS = ScryptParams()


def _password_bytes(password: str) -> bytes:
    if not isinstance(password, str):
        raise TypeError("password must be a str")
    return password.encode("utf-8", "surrogatepass")


def _scrypt(password: bytes, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(
        password,
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=params.memory + 16 * 1024 * 1024,
        dklen=HASH_BYTES,
    )


def hash_password(
    password: str, *, params: ScryptParams = DEFAULT_PARAMS, salt: bytes | None = None
) -> str:
    """The self-describing scrypt hash of ``password`` (a fresh random salt unless given).

    Does not apply the password policy (see :func:`check_new_password`).
    Raises TypeError for a non-str password, CredentialFormatError for a salt
    that is not 16 bytes.
    """
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if not isinstance(salt, bytes) or len(salt) != SALT_BYTES:
        raise CredentialFormatError(f"the salt must be {SALT_BYTES} bytes", part="salt")
    digest = _scrypt(_password_bytes(password), salt, params)
    return "$".join(
        (
            SCHEME,
            str(params.n),
            str(params.r),
            str(params.p),
            base64.b64encode(salt).decode("ascii"),
            base64.b64encode(digest).decode("ascii"),
        )
    )


@dataclass(frozen=True, slots=True)
class ParsedHash:
    """The pieces of a stored hash."""

    params: ScryptParams
    salt: bytes
    digest: bytes


def _b64(text: str, size: int, part: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise CredentialFormatError(f"the {part} of the password hash is not base64",
                                    part=part) from None
    if len(raw) != size:
        raise CredentialFormatError(f"the {part} of the password hash is not {size} bytes",
                                    part=part)
    return raw


def parse_hash(encoded: str) -> ParsedHash:
    """Split a stored hash into parameters, salt and digest. Raises CredentialFormatError."""
    parts = encoded.split("$") if isinstance(encoded, str) else []
    if len(parts) != 6 or parts[0] != SCHEME:
        raise CredentialFormatError("not an scrypt password hash", part="scheme")
    n_text, r_text, p_text = parts[1:4]
    if not all(t.isdigit() and len(t) <= 8 for t in (n_text, r_text, p_text)):
        raise CredentialFormatError("scrypt parameters are not integers", part="scrypt-params")
    params = ScryptParams(int(n_text), int(r_text), int(p_text))
    return ParsedHash(params, _b64(parts[4], SALT_BYTES, "salt"), _b64(parts[5], HASH_BYTES,
                                                                         "hash"))


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches the stored hash ``encoded`` (constant-time compare).

    A password longer than MAX_PASSWORD_BYTES is refused without hashing.
    Raises CredentialFormatError when ``encoded`` is not a valid hash (a server
    side problem: the caller must not tell the client).
    """
    parsed = parse_hash(encoded)
    raw = _password_bytes(password)
    if len(raw) > MAX_PASSWORD_BYTES:
        return False
    return hmac.compare_digest(_scrypt(raw, parsed.salt, parsed.params), parsed.digest)


def needs_rehash(encoded: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    """True when ``encoded`` is not a valid scrypt hash or uses other parameters than
    ``params`` (the current policy): re-hash at the next successful check."""
    try:
        return parse_hash(encoded).params != params
    except CredentialFormatError:
        return True


def check_new_password(password: str) -> None:
    """Apply the policy for new passwords: at least MIN_PASSWORD_CHARS characters, at most
    MAX_PASSWORD_BYTES bytes of UTF-8, no control characters, not only whitespace.
    Raises WeakPasswordError (the message never contains the password)."""
    if not isinstance(password, str):
        raise WeakPasswordError("the password must be text")
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPasswordError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:
        raise WeakPasswordError("the password is not valid Unicode text") from None
    if size > MAX_PASSWORD_BYTES:
        raise WeakPasswordError(f"the password is longer than {MAX_PASSWORD_BYTES} bytes (UTF-8)")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise WeakPasswordError("the password contains control characters")
    if not password.strip():
        raise WeakPasswordError("the password is only whitespace")


class PasswordVerifier:
    """Checks PasswordText credentials on the request path.

    - At most ``max_concurrent`` scrypt computations run at once (each needs
      ``params.memory`` bytes), the rest wait: parallel logins cannot exhaust memory.
    - A successful check is remembered for ``cache_ttl`` seconds as an HMAC (under
      a random per-process key) of user, stored hash and password, so a client
      calling many times does not pay scrypt each time. Changing the password
      changes the stored hash, so old entries stop matching at once. At most
      ``cache_size`` entries (least recently used dropped). Failures are never cached.
    - :meth:`burn` spends the same work for an unknown user, so response times do
      not reveal which user names exist.

    Thread-safe. The cache lives in the process: with N gunicorn workers a client
    pays at most N hashes per TTL.
    """

    def __init__(
        self,
        *,
        max_concurrent: int = 2,
        cache_ttl: float = 300.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= max_concurrent <= 64 or cache_ttl < 0 or cache_size < 0:
            raise ValueError("max_concurrent 1..64, cache_ttl >= 0, cache_size >= 0")
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._ttl = cache_ttl
        self._size = cache_size
        self._clock = clock
        self._key = os.urandom(32)
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        self._recent: OrderedDict[bytes, float] = OrderedDict()  # (user, password) -> expiry
        self._lock = threading.Lock()
        self._dummy: str | None = None
        self.hashes_computed = 0  # for tests and metrics

    def _count(self) -> None:
        with self._lock:
            self.hashes_computed += 1

    def _mac(self, username: str, encoded: str, password: str) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for piece in (username, encoded, password):
            data = _password_bytes(piece)
            mac.update(len(data).to_bytes(4, "big") + data)
        return mac.digest()

    def _cached(self, tag: bytes, cache: OrderedDict[bytes, float] | None = None) -> bool:
        cache = self._cache if cache is None else cache
        now = self._clock()
        with self._lock:
            expiry = cache.get(tag)
            if expiry is None:
                return False
            if expiry <= now:
                del cache[tag]
                return False
            cache.move_to_end(tag)
            return True

    def _remember(self, tag: bytes, cache: OrderedDict[bytes, float] | None = None) -> None:
        cache = self._cache if cache is None else cache
        if self._size == 0 or self._ttl == 0:
            return
        with self._lock:
            cache[tag] = self._clock() + self._ttl
            cache.move_to_end(tag)
            while len(cache) > self._size:
                cache.popitem(last=False)

    def verified_recently(self, username: str, password: str) -> bool:
        """True when this user name and password passed :meth:`verify` within the cache
        TTL (against whatever hash was stored then). Only a hint for choosing a faster
        path: it proves nothing about the hash stored now."""
        if len(_password_bytes(password)) > MAX_PASSWORD_BYTES:
            return False
        return self._cached(self._mac(username, "", password), self._recent)

    def verify_cached(self, username: str, password: str, encoded: str) -> bool:
        """True when :meth:`verify` would answer True from its cache, without hashing;
        False means "not known" (the password may still be right)."""
        if len(_password_bytes(password)) > MAX_PASSWORD_BYTES:
            return False
        return self._cached(self._mac(username, encoded, password))

    def verify(self, username: str, password: str, encoded: str) -> bool:
        """True when ``password`` matches ``encoded`` (the stored hash of ``username``).
        Raises CredentialFormatError for a malformed stored hash."""
        if len(_password_bytes(password)) > MAX_PASSWORD_BYTES:
            return False
        tag = self._mac(username, encoded, password)
        if self._cached(tag):
            self._remember(self._mac(username, "", password), self._recent)
            return True
        with self._slots:
            self._count()
            ok = verify_password(password, encoded)
        if ok:
            self._remember(tag)
            self._remember(self._mac(username, "", password), self._recent)
        return ok

    def burn(self, password: str) -> bool:
        """Spend one hash computation at the default parameters and return False (for an
        unknown user or a user without a usable hash)."""
        if self._dummy is None:
            self._dummy = hash_password(secrets.token_urlsafe(24))
        raw = _password_bytes(password)[:MAX_PASSWORD_BYTES]
        with self._slots:
            self._count()
            verify_password(raw.decode("utf-8", "ignore"), self._dummy)
        return False
