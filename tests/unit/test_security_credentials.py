"""Stored credentials (scrypt hash + sealed digest secret) and the digest key file."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from soapattest.errors import ConfigError, CredentialFormatError
from soapattest.security.credentials import (
    DigestKey,
    StoredCredential,
    create_digest_key,
    load_digest_key,
    load_or_create_digest_key,
    new_credential,
)
from soapattest.security.passwords import ScryptParams, verify_password

FAST = ScryptParams(n=2**10)
PASSWORD = "correct horse battery staple"


def test_create_and_load_digest_key(tmp_path: Path) -> None:
    path = tmp_path / "digest.key"
    key = create_digest_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_digest_key(path) == key
    assert len(base64.b64decode(path.read_text().strip())) == 32


def test_create_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "digest.key"
    key = create_digest_key(path)
    with pytest.raises(FileExistsError):
        create_digest_key(path)
    assert load_or_create_digest_key(path) == (key, False)


def test_load_or_create_creates(tmp_path: Path) -> None:
    key, created = load_or_create_digest_key(tmp_path / "k")
    assert created is True
    assert load_digest_key(tmp_path / "k") == key


def test_key_readable_by_others_refused(tmp_path: Path) -> None:
    path = tmp_path / "digest.key"
    create_digest_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError) as info:
        load_digest_key(path)
    assert info.value.option == "auth.digest_key"


@pytest.mark.parametrize("content", ["not base64!!", base64.b64encode(b"k" * 16).decode(), ""])
def test_bad_key_file_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "digest.key"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError):
        load_digest_key(path)


def test_missing_key_file_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_digest_key(tmp_path / "absent")


def test_seal_round_trip_and_binding() -> None:
    key = DigestKey(os.urandom(32))
    sealed = key.seal("alice", PASSWORD)
    assert PASSWORD not in sealed
    assert sealed.startswith(f"aes256gcm${key.key_id}$")
    assert key.unseal("alice", sealed) == PASSWORD
    with pytest.raises(CredentialFormatError):
        key.unseal("bob", sealed)  # bound to the user name


def test_unseal_with_another_key_refused() -> None:
    sealed = DigestKey(os.urandom(32)).seal("alice", PASSWORD)
    with pytest.raises(CredentialFormatError) as info:
        DigestKey(os.urandom(32)).unseal("alice", sealed)
    assert info.value.part == "key-id"


def test_tampered_ciphertext_refused() -> None:
    key = DigestKey(os.urandom(32))
    scheme, kid, iv, ct = key.seal("alice", PASSWORD).split("$")
    raw = bytearray(base64.b64decode(ct))
    raw[0] ^= 1
    with pytest.raises(CredentialFormatError):
        key.unseal("alice", "$".join((scheme, kid, iv, base64.b64encode(bytes(raw)).decode())))


def test_key_repr_hides_key() -> None:
    key = DigestKey(b"\x01" * 32)
    assert "\\x01" not in repr(key) and "01" * 4 not in repr(key)


def test_credential_without_digest() -> None:
    text = new_credential("alice", PASSWORD, params=FAST)
    stored = StoredCredential.parse(text)
    assert stored.digest_enabled is False
    assert stored.encode() == text
    assert verify_password(PASSWORD, stored.password_hash)


def test_credential_with_digest() -> None:
    key = DigestKey(os.urandom(32))
    text = new_credential("alice", PASSWORD, digest_key=key, params=FAST)
    stored = StoredCredential.parse(text)
    assert stored.digest_enabled is True
    assert stored.sealed_password is not None
    assert key.unseal("alice", stored.sealed_password) == PASSWORD
    assert verify_password(PASSWORD, stored.password_hash)
    assert StoredCredential.parse(stored.encode()) == stored
    assert len(text) < 1024  # fits the store's column check
    assert PASSWORD not in repr(stored) and stored.password_hash not in repr(stored)


@pytest.mark.parametrize("suffix", [";junk", ";aes256gcm$a$b$c;more", ";"])
def test_credential_with_unknown_piece_refused(suffix: str) -> None:
    text = new_credential("alice", PASSWORD, params=FAST)
    with pytest.raises(CredentialFormatError):
        StoredCredential.parse(text + suffix)


def test_longest_password_fits_the_column() -> None:
    key = DigestKey(os.urandom(32))
    text = new_credential("alice", "é" * 128, digest_key=key, params=FAST)  # 256 bytes
    assert len(text) <= 1024
