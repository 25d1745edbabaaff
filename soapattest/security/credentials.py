"""A user's stored credential, and the server key that seals PasswordDigest secrets.

WS-Security PasswordDigest (``Base64(SHA-1(nonce + created + password))``)
can only be checked by a party that knows the password itself; an scrypt hash
does not do. So a user who must authenticate with PasswordDigest has, besides
the scrypt hash, the password sealed (AES-256-GCM) under a server-side *digest
key* that is kept outside the database (a file, mode 0600). A database dump
alone yields no usable credential; dump plus key file yields the passwords of
digest-enabled users only. Users without digest keep only the scrypt hash and
can use PasswordText (TLS only). See ``docs/security.md`` for the trade-off.

The stored string (``User.password_hash``, opaque to the store) is::

    scrypt$n$r$p$salt_b64$hash_b64                          # PasswordText only
    scrypt$n$r$p$salt_b64$hash_b64;aes256gcm$kid$iv_b64$ct_b64   # + PasswordDigest

``kid`` identifies the digest key (first 8 bytes of a SHA-256 over the key, hex);
the AES-GCM associated data binds the sealed secret to the user name, so it
cannot be moved to another account.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from soapattest.errors import ConfigError, CredentialFormatError
from soapattest.security.passwords import DEFAULT_PARAMS, ScryptParams, hash_password, parse_hash

DIGEST_KEY_BYTES = 32
SEAL_SCHEME = "aes256gcm"
_SEP = ";"
_AAD_PREFIX = b"soapattest:wsse-password-digest:v1:"


@dataclass(frozen=True, slots=True)
class DigestKey:
    """The server key sealing the PasswordDigest secrets (32 random bytes)."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) != DIGEST_KEY_BYTES:
            raise ConfigError(f"a digest key is {DIGEST_KEY_BYTES} bytes", option="auth.digest_key")

    @property
    def key_id(self) -> str:
        """A short public identifier of the key (16 hex digits)."""
        return hashlib.sha256(b"soapattest digest key id\0" + self.key).hexdigest()[:16]

    def seal(self, username: str, password: str) -> str:
        """``aes256gcm$kid$iv$ct``: ``password`` encrypted for ``username``."""
        iv = secrets.token_bytes(12)
        ct = AESGCM(self.key).encrypt(iv, password.encode("utf-8"), _aad(username))
        return "$".join((SEAL_SCHEME, self.key_id, _enc(iv), _enc(ct)))

    def unseal(self, username: str, sealed: str) -> str:
        """The password sealed for ``username``. Raises CredentialFormatError when the
        string is malformed, sealed under another key, for another user, or altered."""
        parts = sealed.split("$")
        if len(parts) != 4 or parts[0] != SEAL_SCHEME:
            raise CredentialFormatError("not a sealed digest secret", part="sealed")
        if parts[1] != self.key_id:
            raise CredentialFormatError(
                f"the digest secret was sealed under key {parts[1]!r}, not the configured "
                f"key {self.key_id!r}",
                part="key-id",
            )
        iv, ct = _dec(parts[2], "sealed"), _dec(parts[3], "sealed")
        try:
            plain = AESGCM(self.key).decrypt(iv, ct, _aad(username))
            return plain.decode("utf-8")
        except (InvalidTag, ValueError):
            raise CredentialFormatError("the sealed digest secret does not open",
                                        part="sealed") from None


def _aad(username: str) -> bytes:
    return _AAD_PREFIX + username.encode("utf-8")


def _enc(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _dec(text: str, part: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise CredentialFormatError(f"the {part} piece is not base64", part=part) from None


def load_digest_key(path: Path) -> DigestKey:
    """Read the digest key file (base64 of 32 bytes). Refuses a file that group or others
    may read or write. Raises ConfigError (option ``auth.digest_key``)."""
    option = "auth.digest_key"
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the digest key {path}: {exc}", option=option) from exc
    if stat.S_IMODE(mode) & 0o077:
        raise ConfigError(
            f"the digest key {path} is accessible to group/others (mode "
            f"{stat.S_IMODE(mode):o}); chmod 600 it",
            option=option,
        )
    try:
        raw = base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"the digest key {path} is not base64", option=option) from None
    if len(raw) != DIGEST_KEY_BYTES:
        raise ConfigError(f"the digest key {path} is not {DIGEST_KEY_BYTES} bytes", option=option)
    return DigestKey(raw)


def create_digest_key(path: Path) -> DigestKey:
    """Create a new random digest key file (mode 0600; never overwrites: FileExistsError
    when the file exists). Returns the key."""
    key = DigestKey(secrets.token_bytes(DIGEST_KEY_BYTES))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(_enc(key.key) + "\n")
    return key


def load_or_create_digest_key(path: Path) -> tuple[DigestKey, bool]:
    """The key in ``path``, created first if the file does not exist; ``(key, created)``."""
    try:
        return create_digest_key(path), True
    except FileExistsError:
        return load_digest_key(path), False


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """The decoded stored credential: the scrypt hash and, for digest users, the sealed
    password."""

    password_hash: str = field(repr=False)
    sealed_password: str | None = field(default=None, repr=False)

    @property
    def digest_enabled(self) -> bool:
        """True when the user can authenticate with PasswordDigest."""
        return self.sealed_password is not None

    def encode(self) -> str:
        """The string stored in ``User.password_hash``."""
        if self.sealed_password is None:
            return self.password_hash
        return self.password_hash + _SEP + self.sealed_password

    @classmethod
    def parse(cls, text: str) -> StoredCredential:
        """Split a stored string; checks the hash part. Raises CredentialFormatError."""
        if not isinstance(text, str):
            raise CredentialFormatError("the stored credential is not text", part="credential")
        head, sep, tail = text.partition(_SEP)
        parse_hash(head)
        if sep and (not tail.startswith(SEAL_SCHEME + "$") or _SEP in tail):
            raise CredentialFormatError("unknown piece in the stored credential", part="sealed")
        return cls(head, tail if sep else None)


def new_credential(
    username: str,
    password: str,
    *,
    digest_key: DigestKey | None = None,
    params: ScryptParams = DEFAULT_PARAMS,
) -> str:
    """The stored string for a new password: the scrypt hash, plus the password sealed
    under ``digest_key`` when given (PasswordDigest enabled). Apply
    :func:`~soapattest.security.passwords.check_new_password` first."""
    sealed = digest_key.seal(username, password) if digest_key is not None else None
    return StoredCredential(hash_password(password, params=params), sealed).encode()
