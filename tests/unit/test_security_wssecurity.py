"""WS-Security UsernameToken: our authenticator against zeep's token and our own builder."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree
from zeep.wsse.username import UsernameToken

from soapattest.errors import (
    BadCredentialsError,
    InsecureTransportError,
    MalformedTokenError,
    MissingTokenError,
    NotAuthorizedError,
    ReplayedNonceError,
    StaleTokenError,
)
from soapattest.model import User
from soapattest.security.credentials import DigestKey, new_credential
from soapattest.security.nonces import MemoryNonceCache
from soapattest.security.passwords import PasswordVerifier, ScryptParams
from soapattest.security.wssecurity import (
    BASE64_BINARY,
    PASSWORD_DIGEST,
    PASSWORD_TEXT,
    SECURITY_TAG,
    WSSE_NS,
    WSU_NS,
    Authenticator,
    UsernameTokenPlugin,
    authenticate,
    build_security_header,
    format_created,
    parse_datetime,
)

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
FAST = ScryptParams(n=2**10)
PASSWORD = "correct horse battery staple"
KEY = DigestKey(os.urandom(32))


class Users:
    """A user directory in memory (the store's ``tx.users`` in production)."""

    def __init__(self, *users: User) -> None:
        self.users = {u.name: u for u in users}
        self.lookups: list[str] = []

    def find(self, name: str) -> User | None:
        self.lookups.append(name)
        return self.users.get(name)


USERS = Users(
    User("alice", new_credential("alice", PASSWORD, digest_key=KEY, params=FAST), ("admin",)),
    User("bob", new_credential("bob", PASSWORD, params=FAST), ("reader",)),  # no digest
)


def now() -> datetime:
    return datetime.now(UTC)


def auth(**kwargs: object) -> Authenticator:
    return Authenticator(nonce_cache=MemoryNonceCache(), digest_key=KEY,
                         verifier=PasswordVerifier(), **kwargs)  # type: ignore[arg-type]


def zeep_header(username: str, password: str, *, digest: bool, **kwargs: object) -> etree._Element:
    envelope = etree.fromstring(
        f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Body><x/></soap:Body></soap:Envelope>'.encode()
    )
    UsernameToken(username, password, use_digest=digest, **kwargs).apply(envelope, {})
    security = envelope.find(f".//{SECURITY_TAG}")
    assert security is not None
    return security


# ------------------------------------------------------------------ zeep's implementation


def test_zeep_password_digest_accepted() -> None:
    principal = auth().authenticate(zeep_header("alice", PASSWORD, digest=True), users=USERS,
                                    now=now(), secure=False)
    assert (principal.name, principal.roles, principal.method) == (
        "alice", ("admin",), "PasswordDigest")


def test_zeep_password_digest_wrong_password() -> None:
    with pytest.raises(BadCredentialsError):
        auth().authenticate(zeep_header("alice", PASSWORD + "x", digest=True), users=USERS,
                            now=now(), secure=False)


def test_zeep_password_text_over_tls_accepted() -> None:
    principal = auth().authenticate(zeep_header("bob", PASSWORD, digest=False), users=USERS,
                                    now=now(), secure=True)
    assert (principal.name, principal.method) == ("bob", "PasswordText")


def test_zeep_password_text_without_tls_refused() -> None:
    with pytest.raises(InsecureTransportError):
        auth().authenticate(zeep_header("bob", PASSWORD, digest=False), users=USERS, now=now(),
                            secure=False)


def test_zeep_zulu_timestamp_accepted() -> None:
    header = zeep_header("alice", PASSWORD, digest=True, zulu_timestamp=True)
    assert auth().authenticate(header, users=USERS, now=now(), secure=False).name == "alice"


def test_zeep_hash_password_variant_refused() -> None:
    # zeep's non-standard hash_password=True digests SHA-1(password): not the profile
    header = zeep_header("alice", PASSWORD, digest=True, hash_password=True)
    with pytest.raises(BadCredentialsError):
        auth().authenticate(header, users=USERS, now=now(), secure=False)


def test_zeep_digest_replay_refused() -> None:
    a = auth()
    header = zeep_header("alice", PASSWORD, digest=True)
    a.authenticate(header, users=USERS, now=now(), secure=False)
    with pytest.raises(ReplayedNonceError):
        a.authenticate(header, users=USERS, now=now(), secure=False)


@pytest.mark.parametrize("offset", [-301, 301])
def test_zeep_stale_token_refused(offset: int) -> None:
    created = now() + timedelta(seconds=offset)
    header = zeep_header("alice", PASSWORD, digest=True, created=created)
    with pytest.raises(StaleTokenError) as info:
        auth().authenticate(header, users=USERS, now=now(), secure=False)
    assert (info.value.skew_seconds > 0) == (offset > 0)


@pytest.mark.parametrize("offset", [-290, 290])
def test_zeep_token_inside_window_accepted(offset: int) -> None:
    created = now() + timedelta(seconds=offset)
    header = zeep_header("alice", PASSWORD, digest=True, created=created)
    assert auth().authenticate(header, users=USERS, now=now(), secure=False).name == "alice"


def test_window_is_configurable() -> None:
    created = now() - timedelta(seconds=90)
    header = zeep_header("alice", PASSWORD, digest=True, created=created)
    with pytest.raises(StaleTokenError):
        auth(window=60).authenticate(header, users=USERS, now=now(), secure=False)
    header = zeep_header("alice", PASSWORD, digest=True, created=created)
    assert auth(window=120).authenticate(header, users=USERS, now=now(), secure=False)


# ------------------------------------------------------------------ credentials


@pytest.mark.parametrize("digest", [True, False])
def test_unknown_user_and_wrong_password_look_alike(digest: bool) -> None:
    messages = []
    for username, password in (("nobody", PASSWORD), ("alice", "wrong password 123")):
        with pytest.raises(BadCredentialsError) as info:
            auth().authenticate(zeep_header(username, password, digest=digest), users=USERS,
                                now=now(), secure=True)
        messages.append(info.value.message)
    assert messages[0] == messages[1]
    assert "nobody" not in messages[0]


def test_unknown_user_costs_a_hash() -> None:
    verifier = PasswordVerifier()
    a = Authenticator(nonce_cache=MemoryNonceCache(), verifier=verifier)
    with pytest.raises(BadCredentialsError):
        a.authenticate(zeep_header("nobody", PASSWORD, digest=False), users=USERS, now=now(),
                       secure=True)
    assert verifier.hashes_computed == 1


def test_digest_for_user_without_digest_secret_looks_like_bad_password() -> None:
    with pytest.raises(BadCredentialsError) as info:
        auth().authenticate(zeep_header("bob", PASSWORD, digest=True), users=USERS, now=now(),
                            secure=False)
    with pytest.raises(BadCredentialsError) as other:
        auth().authenticate(zeep_header("bob", "wrong password 123", digest=True), users=USERS,
                            now=now(), secure=False)
    assert info.value.message == other.value.message


def test_digest_refused_when_server_has_no_digest_key() -> None:
    a = Authenticator(nonce_cache=MemoryNonceCache())
    with pytest.raises(BadCredentialsError, match="PasswordDigest is not enabled"):
        a.authenticate(zeep_header("alice", PASSWORD, digest=True), users=USERS, now=now(),
                       secure=False)
    # PasswordText over TLS works for the same user
    assert a.authenticate(zeep_header("alice", PASSWORD, digest=False), users=USERS,
                          now=now(), secure=True).name == "alice"


def test_digest_sealed_under_another_key_refused() -> None:
    a = Authenticator(nonce_cache=MemoryNonceCache(), digest_key=DigestKey(os.urandom(32)))
    with pytest.raises(BadCredentialsError):
        a.authenticate(zeep_header("alice", PASSWORD, digest=True), users=USERS, now=now(),
                       secure=False)


def test_corrupt_stored_credential_refused() -> None:
    users = Users(User("eve", "scrypt$garbage", ("admin",)))
    with pytest.raises(BadCredentialsError):
        auth().authenticate(zeep_header("eve", PASSWORD, digest=False), users=users, now=now(),
                            secure=True)


def test_failed_attempt_does_not_burn_the_nonce() -> None:
    a = auth()
    nonce = os.urandom(16)
    t = now()
    bad = build_security_header("alice", "wrong password 123", nonce=nonce, now=t)
    with pytest.raises(BadCredentialsError):
        a.authenticate(bad, users=USERS, now=t, secure=False)
    good = build_security_header("alice", PASSWORD, nonce=nonce, now=t)
    assert a.authenticate(good, users=USERS, now=t, secure=False).name == "alice"


def test_module_level_authenticate() -> None:
    principal = authenticate(zeep_header("alice", PASSWORD, digest=True), users=USERS, now=now(),
                             secure=False, nonce_cache=MemoryNonceCache(), digest_key=KEY)
    assert principal.name == "alice"


# ------------------------------------------------------------------ our builder


@pytest.mark.parametrize(("mode", "secure", "method"), [
    ("digest", False, "PasswordDigest"), ("digest", True, "PasswordDigest"),
    ("text", True, "PasswordText"),
])
def test_builder_accepted(mode: str, secure: bool, method: str) -> None:
    header = build_security_header("alice", PASSWORD, mode=mode)  # type: ignore[arg-type]
    principal = auth().authenticate(header, users=USERS, now=now(), secure=secure)
    assert principal.method == method


def test_builder_text_replay_refused() -> None:
    a = auth()
    header = build_security_header("alice", PASSWORD, mode="text")
    a.authenticate(header, users=USERS, now=now(), secure=True)
    with pytest.raises(ReplayedNonceError):
        a.authenticate(header, users=USERS, now=now(), secure=True)


def test_builder_digest_matches_the_profile() -> None:
    t = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    nonce = b"\x01" * 16
    header = build_security_header("alice", PASSWORD, now=t, nonce=nonce)
    token = header.find(f"{{{WSSE_NS}}}UsernameToken")
    assert token is not None
    created = token.findtext(f"{{{WSU_NS}}}Created")
    assert created == "2025-03-04T05:06:07.890Z" == format_created(t)
    digest = base64.b64encode(
        hashlib.sha1(nonce + created.encode() + PASSWORD.encode()).digest()  # noqa: S324
    )
    pw = token.find(f"{{{WSSE_NS}}}Password")
    assert pw is not None and pw.get("Type") == PASSWORD_DIGEST
    assert pw.text == digest.decode()
    assert header.get(f"{{{SOAP}}}mustUnderstand") == "1"


def test_plugin_applies_a_fresh_header() -> None:
    plugin = UsernameTokenPlugin("alice", PASSWORD)
    envelope = etree.fromstring(
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body><x/></s:Body></s:Envelope>'.encode())
    plugin.apply(envelope, {})
    plugin.apply(envelope, {})  # replaces, never stacks two tokens
    headers = envelope.findall(f"{{{SOAP}}}Header/{SECURITY_TAG}")
    assert len(headers) == 1
    assert auth().authenticate(headers[0], users=USERS, now=now(), secure=False).name == "alice"
    assert PASSWORD not in repr(plugin)


# ------------------------------------------------------------------ structure


def token_xml(inner: str, *, extra: str = "") -> etree._Element:
    return etree.fromstring(
        f'<wsse:Security xmlns:wsse="{WSSE_NS}" xmlns:wsu="{WSU_NS}">'
        f"<wsse:UsernameToken>{inner}</wsse:UsernameToken>{extra}</wsse:Security>".encode()
    )


def fresh_parts(password: str = PASSWORD, *, nonce: bytes | None = None,
                created: str | None = None) -> tuple[str, str, str]:
    nonce = nonce or os.urandom(16)
    created = created or format_created(now())
    raw = hashlib.sha1(nonce + created.encode() + password.encode()).digest()  # noqa: S324
    digest = base64.b64encode(raw).decode()
    return digest, base64.b64encode(nonce).decode(), created


def digest_token(
    *,
    user: str = "alice",
    ptype: str = PASSWORD_DIGEST,
    nonce: bytes | None = None,
    created: str | None = None,
    nonce_attr: str = "",
    extra: str = "",
) -> etree._Element:
    digest, nonce_b64, created = fresh_parts(nonce=nonce, created=created)
    return token_xml(
        f"<wsse:Username>{user}</wsse:Username>"
        f'<wsse:Password Type="{ptype}">{digest}</wsse:Password>'
        f"<wsse:Nonce{nonce_attr}>{nonce_b64}</wsse:Nonce>"
        f"<wsu:Created>{created}</wsu:Created>{extra}"
    )


def test_hand_made_digest_token_accepted() -> None:
    assert auth().authenticate(digest_token(), users=USERS, now=now(), secure=False)
    token = digest_token(nonce_attr=f' EncodingType="{BASE64_BINARY}"')
    assert auth().authenticate(token, users=USERS, now=now(), secure=False)


def test_missing_header_refused() -> None:
    with pytest.raises(MissingTokenError):
        auth().authenticate(None, users=USERS, now=now(), secure=True)


def test_security_without_username_token_refused() -> None:
    empty = etree.fromstring(f'<wsse:Security xmlns:wsse="{WSSE_NS}"/>'.encode())
    with pytest.raises(MissingTokenError):
        auth().authenticate(empty, users=USERS, now=now(), secure=True)


def test_two_username_tokens_refused() -> None:
    one = digest_token()
    one.append(digest_token()[0])
    with pytest.raises(MalformedTokenError):
        auth().authenticate(one, users=USERS, now=now(), secure=False)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"ptype": "wsse:PasswordDigest"}, "QName instead of the URI"),
        ({"ptype": "urn:other#PasswordHash"}, "unknown type"),
        ({"nonce": b"short"}, "nonce too short"),
        ({"nonce": b"n" * 65}, "nonce too long"),
        ({"nonce_attr": ' EncodingType="urn:hex"'}, "nonce encoding not Base64Binary"),
        ({"created": "2025-01-01T00:00:00"}, "Created without zone"),
        ({"created": "yesterday"}, "Created not a dateTime"),
        ({"created": "2025-13-01T00:00:00Z"}, "month 13"),
        ({"extra": "<wsse:Salt>AAAA</wsse:Salt>"}, "key derivation elements"),
        ({"extra": "<wsse:Nonce>AAAAAAAAAAAAAAAAAAAAAA==</wsse:Nonce>"}, "two nonces"),
        ({"user": ""}, "empty user name"),
    ],
)
def test_malformed_tokens_refused(kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(MalformedTokenError):
        auth().authenticate(digest_token(**kwargs), users=USERS,  # type: ignore[arg-type]
                            now=now(), secure=False)


def test_nonce_not_base64_refused() -> None:
    token = token_xml("<wsse:Username>alice</wsse:Username>"
                      f'<wsse:Password Type="{PASSWORD_DIGEST}">AAAA</wsse:Password>'
                      "<wsse:Nonce>not*base64</wsse:Nonce>"
                      f"<wsu:Created>{format_created(now())}</wsu:Created>")
    with pytest.raises(MalformedTokenError):
        auth().authenticate(token, users=USERS, now=now(), secure=False)


@pytest.mark.parametrize("drop", ["Nonce", "Created"])
def test_digest_needs_nonce_and_created(drop: str) -> None:
    token = digest_token()
    ut = token[0]
    for child in list(ut):
        if etree.QName(child).localname == drop:
            ut.remove(child)
    with pytest.raises(MalformedTokenError):
        auth().authenticate(token, users=USERS, now=now(), secure=False)


def test_password_type_defaults_to_text() -> None:
    token = token_xml(f"<wsse:Username>bob</wsse:Username><wsse:Password>{PASSWORD}"
                      "</wsse:Password>")
    assert auth().authenticate(token, users=USERS, now=now(), secure=True).method == "PasswordText"
    token = token_xml(f"<wsse:Username>bob</wsse:Username><wsse:Password Type=\"{PASSWORD_TEXT}\">"
                      f"{PASSWORD}</wsse:Password>")
    assert auth().authenticate(token, users=USERS, now=now(), secure=True).name == "bob"


def test_expired_timestamp_refused() -> None:
    past = format_created(now() - timedelta(seconds=5))
    expired = f"<wsu:Timestamp><wsu:Created>{past}</wsu:Created><wsu:Expires>{past}" \
              "</wsu:Expires></wsu:Timestamp>"
    digest, nonce_b64, created = fresh_parts()
    inner = ("<wsse:Username>alice</wsse:Username>"
             f'<wsse:Password Type="{PASSWORD_DIGEST}">{digest}</wsse:Password>'
             f"<wsse:Nonce>{nonce_b64}</wsse:Nonce><wsu:Created>{created}</wsu:Created>")
    with pytest.raises(StaleTokenError):
        auth().authenticate(token_xml(inner, extra=expired), users=USERS, now=now(),
                            secure=False)
    future = format_created(now() + timedelta(seconds=60))
    valid = expired.replace(f"<wsu:Expires>{past}", f"<wsu:Expires>{future}")
    assert auth().authenticate(token_xml(inner, extra=valid), users=USERS, now=now(),
                               secure=False)


def test_every_refusal_is_not_authorized() -> None:
    with pytest.raises(NotAuthorizedError) as info:
        auth().authenticate(None, users=USERS, now=now(), secure=False)
    assert info.value.code == "Client.NotAuthorized"


def test_parse_datetime_forms() -> None:
    expected = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_datetime("2025-01-02T03:04:05Z") == expected
    assert parse_datetime("2025-01-02T05:04:05+02:00") == expected
    assert parse_datetime("2025-01-02T03:04:05.123456789Z") == expected.replace(
        microsecond=123456)
