"""WS-Security UsernameToken (OASIS WSS UsernameToken Profile 1.1), server and client side.

Server side: :class:`Authenticator` turns the ``wsse:Security`` header element
(exposed by :class:`~soapattest.security.xmlguard.XmlGuard` as
``environ["soapattest.wsse"]``) into a :class:`Principal` or raises a subclass
of NotAuthorizedError (code ``Client.NotAuthorized``). Steps:

1. Exactly one ``wsse:UsernameToken`` with one Username, one Password
   (Type PasswordText - the default - or PasswordDigest), at most one Nonce
   (Base64Binary, 16..64 bytes) and one ``wsu:Created`` (xsd:dateTime with a zone).
2. PasswordText only over TLS (``secure``); PasswordDigest requires Nonce and
   Created (UT Profile 1.1, 3.1).
3. Freshness: Created within +-``window`` seconds of the server clock; an
   optional ``wsu:Timestamp/wsu:Expires`` must not have passed.
4. The credential: PasswordText against the scrypt hash (cached verifier);
   PasswordDigest = Base64(SHA-1(nonce + created + password)) against the
   password sealed under the server's digest key (see
   :mod:`~soapattest.security.credentials`). Unknown users cost the same work
   and get the same message as a wrong password.
5. Replay: the Nonce (when present) must not have been seen for this user
   within the window (checked only after the credential, so anonymous callers
   cannot fill the cache).

Client side: :func:`build_security_header` and :class:`UsernameTokenPlugin`
(a zeep ``wsse=`` plugin) produce tokens this server accepts; zeep's own
``zeep.wsse.username.UsernameToken`` is accepted too (tests check both modes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from lxml import etree

from soapattest.errors import (
    AuthenticationError,
    BadCredentialsError,
    CredentialFormatError,
    InsecureTransportError,
    MalformedTokenError,
    MissingTokenError,
    ReplayedNonceError,
    StaleTokenError,
)
from soapattest.model import User
from soapattest.security.credentials import DigestKey, StoredCredential
from soapattest.security.nonces import NonceCache, StoreNonceCache
from soapattest.security.passwords import MAX_PASSWORD_BYTES, PasswordVerifier
from soapattest.store import Store, Tx

log = logging.getLogger("soapattest.security.auth")

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_UTP = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = _UTP + "#PasswordText"
PASSWORD_DIGEST = _UTP + "#PasswordDigest"
BASE64_BINARY = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
    "#Base64Binary"
)
SECURITY_TAG = f"{{{WSSE_NS}}}Security"
DEFAULT_WINDOW = 300
MIN_NONCE_BYTES = 16
MAX_NONCE_BYTES = 64
MAX_USERNAME_CHARS = 255
BAD_CREDENTIALS = "authentication failed: unknown user name or bad password"

_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", re.ASCII
)
_TOKEN_CHILDREN = {
    f"{{{WSSE_NS}}}Username": "username",
    f"{{{WSSE_NS}}}Password": "password",
    f"{{{WSSE_NS}}}Nonce": "nonce",
    f"{{{WSU_NS}}}Created": "created",
}

Mode = Literal["text", "digest"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: user ``name``, its ``roles``, and how it authenticated
    (``PasswordText`` or ``PasswordDigest``)."""

    name: str
    roles: tuple[str, ...]
    method: str


@dataclass(frozen=True, slots=True)
class UntrustedUsernameToken:
    """A parsed, not yet verified UsernameToken. ``created_text`` is the exact text
    (the digest is computed over it)."""

    username: str
    password: str = field(repr=False)
    digest: bool
    nonce: bytes | None
    created_text: str | None
    created: datetime | None


class UserLookup(Protocol):
    """Finds users by name (``tx.users`` of a store transaction satisfies it)."""

    def find(self, name: str) -> User | None:
        """The user or None."""


def parse_datetime(text: str) -> datetime:
    """An xsd:dateTime with an explicit zone (``Z`` or +-hh:mm) as an aware UTC datetime.
    Raises MalformedTokenError."""
    m = _DATETIME.match(text)
    if m is None:
        raise MalformedTokenError("wsu:Created/Expires must be an xsd:dateTime with a time zone")
    fraction = (m.group(2) or "")[:7]  # at most microseconds
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.fromisoformat(m.group(1) + fraction + zone).astimezone(UTC)
    except ValueError:
        raise MalformedTokenError("wsu:Created/Expires is not a valid date and time") from None


def _strict_b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()).encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise MalformedTokenError(f"{what} is not base64") from None


def parse_username_token(security: etree._Element) -> UntrustedUsernameToken:
    """Step 1: the single UsernameToken of a ``wsse:Security`` element.

    Raises MissingTokenError (no token) or MalformedTokenError.
    """
    if security.tag != SECURITY_TAG:
        raise MissingTokenError("the request has no wsse:Security header")
    tokens = security.findall(f"{{{WSSE_NS}}}UsernameToken")
    if not tokens:
        raise MissingTokenError("the wsse:Security header holds no wsse:UsernameToken")
    if len(tokens) > 1:
        raise MalformedTokenError("the wsse:Security header holds more than one UsernameToken")
    found: dict[str, etree._Element] = {}
    for child in tokens[0]:
        if not isinstance(child.tag, str):
            continue  # comments
        name = _TOKEN_CHILDREN.get(child.tag)
        if name is None:
            raise MalformedTokenError(f"unexpected element {etree.QName(child).localname!r} in "
                                      "the UsernameToken")
        if name in found:
            raise MalformedTokenError(f"the UsernameToken has more than one {name}")
        found[name] = child
    if "username" not in found or "password" not in found:
        raise MalformedTokenError("the UsernameToken needs a Username and a Password")
    username = (found["username"].text or "").strip()
    if not username or len(username) > MAX_USERNAME_CHARS or not username.isprintable():
        raise MalformedTokenError("the Username is empty, too long or has control characters")
    pw_el = found["password"]
    pw_type = pw_el.get("Type", PASSWORD_TEXT)
    if pw_type not in (PASSWORD_TEXT, PASSWORD_DIGEST):
        raise MalformedTokenError("the Password Type is neither PasswordText nor PasswordDigest")
    password = pw_el.text or ""
    if len(password) > 4 * MAX_PASSWORD_BYTES:
        raise MalformedTokenError("the Password is too long")
    nonce = None
    if "nonce" in found:
        encoding = found["nonce"].get("EncodingType", BASE64_BINARY)
        if encoding != BASE64_BINARY:
            raise MalformedTokenError("the Nonce EncodingType must be Base64Binary")
        nonce = _strict_b64(found["nonce"].text or "", "the Nonce")
        if not MIN_NONCE_BYTES <= len(nonce) <= MAX_NONCE_BYTES:
            raise MalformedTokenError(
                f"the Nonce must be {MIN_NONCE_BYTES}..{MAX_NONCE_BYTES} random bytes"
            )
    created_text = created = None
    if "created" in found:
        created_text = (found["created"].text or "").strip()
        created = parse_datetime(created_text)
    return UntrustedUsernameToken(username, password, pw_type == PASSWORD_DIGEST, nonce,
                                  created_text, created)


def _timestamp_expiry(security: etree._Element) -> datetime | None:
    stamps = security.findall(f"{{{WSU_NS}}}Timestamp")
    if len(stamps) > 1:
        raise MalformedTokenError("the wsse:Security header holds more than one wsu:Timestamp")
    if not stamps:
        return None
    expires = stamps[0].findall(f"{{{WSU_NS}}}Expires")
    if len(expires) > 1:
        raise MalformedTokenError("the wsu:Timestamp has more than one Expires")
    return parse_datetime((expires[0].text or "").strip()) if expires else None


def password_digest(nonce: bytes, created_text: str, password: str) -> bytes:
    """SHA-1(nonce + created + password) (UT Profile 1.1, 3.1), the raw 20 bytes."""
    data = nonce + created_text.encode("utf-8") + password.encode("utf-8")
    return hashlib.sha1(data).digest()  # noqa: S324 - mandated by the profile


class Authenticator:
    """The server side of UsernameToken authentication (see the module docstring).

    ``nonce_cache``: where nonces are remembered (:mod:`soapattest.security.nonces`);
    ``window``: seconds a token's Created may differ from the server clock (30..3600);
    ``digest_key``: enables PasswordDigest (None: PasswordDigest is refused);
    ``verifier``: the PasswordText checker (one per process, it caches).
    Built once at start-up; thread-safe.
    """

    def __init__(
        self,
        *,
        nonce_cache: NonceCache,
        window: int = DEFAULT_WINDOW,
        digest_key: DigestKey | None = None,
        verifier: PasswordVerifier | None = None,
    ) -> None:
        if not 30 <= window <= 3600:
            raise ValueError("window must be within 30..3600 seconds")
        self.nonce_cache = nonce_cache
        self.window = timedelta(seconds=window)
        self.digest_key = digest_key
        self.verifier = verifier or PasswordVerifier()

    def authenticate(
        self,
        security: etree._Element | None,
        *,
        users: UserLookup,
        now: datetime,
        secure: bool,
        nonce_cache: NonceCache | None = None,
    ) -> Principal:
        """The authenticated caller of a request whose ``wsse:Security`` header is
        ``security`` (None: absent), received over TLS when ``secure``.

        ``nonce_cache`` replaces the authenticator's own cache for this call (see
        :meth:`authenticate_in`). Raises MissingTokenError, MalformedTokenError,
        InsecureTransportError, StaleTokenError, BadCredentialsError,
        ReplayedNonceError (all NotAuthorizedError), ReplayCacheFullError, or
        database errors of ``users`` / the nonce cache. Messages never tell
        whether the user exists.
        """
        try:
            return self._authenticate(security, users=users, now=now, secure=secure,
                                      nonce_cache=nonce_cache or self.nonce_cache)
        except AuthenticationError as exc:
            log.info("authentication refused: %s", exc.reason)
            raise

    def authenticate_in(
        self, tx: Tx, security: etree._Element | None, *, now: datetime, secure: bool
    ) -> Principal:
        """:meth:`authenticate` with the user lookup and - for a
        :class:`~soapattest.security.nonces.StoreNonceCache` - the replay-cache insert in
        the caller's write transaction ``tx``: one transaction per authentication
        instead of two. The nonce counts as seen only if ``tx`` commits; concurrent
        replays still get exactly one acceptance. Raises as :meth:`authenticate`.

        Caveat: a password check that misses the verifier's cache hashes (scrypt)
        inside ``tx`` - on SQLite while holding the write lock, so a stream of bad
        passwords would stall every writer. The request path therefore uses
        :meth:`authenticate` (lookup in a read transaction, the replay-cache insert in
        a short write transaction of its own).
        """
        cache = self.nonce_cache
        bound = cache.within(tx) if isinstance(cache, StoreNonceCache) else cache
        return self.authenticate(security, users=tx.users, now=now, secure=secure,
                                 nonce_cache=bound)

    def authenticate_request(
        self, store: Store, security: etree._Element | None, *, now: datetime, secure: bool
    ) -> Principal:
        """:meth:`authenticate` for the request path, against ``store``.

        A PasswordText token whose user name and password passed within the password
        cache's TTL (a client calling again), with its check still answered by the
        cache for the hash stored *now*, is admitted in one write transaction: the
        user lookup and the replay-cache insert together. Anything else - another
        token, an unknown user, a changed password, a first call - takes the full
        path: the lookup in a read transaction, the password check (which may hash)
        outside any transaction, the replay-cache insert in a short write
        transaction of its own. Bad credentials therefore never take the write
        lock, and no password is hashed while it is held. Raises as
        :meth:`authenticate`.
        """
        try:
            token = self._token(security, now=now, secure=secure)
            cache = self.nonce_cache
            if (
                not token.digest
                and isinstance(cache, StoreNonceCache)
                and self.verifier.verified_recently(token.username, token.password)
            ):
                with store.transaction() as tx:
                    user = tx.users.find(token.username)
                    if self._cached_text_ok(token, user):
                        assert user is not None
                        return self._admit(token, user, cache.within(tx), now)
                # not decided from the cache: nothing was written, the full path decides
            with store.transaction(readonly=True) as tx:
                user = tx.users.find(token.username)
            return self._decide(token, user, cache, now)
        except AuthenticationError as exc:
            log.info("authentication refused: %s", exc.reason)
            raise

    def _cached_text_ok(self, token: UntrustedUsernameToken, user: User | None) -> bool:
        stored = self._stored(user)
        if user is None or stored is None:
            return False
        try:
            return self.verifier.verify_cached(user.name, token.password, stored.password_hash)
        except CredentialFormatError:
            return False

    def _authenticate(
        self,
        security: etree._Element | None,
        *,
        users: UserLookup,
        now: datetime,
        secure: bool,
        nonce_cache: NonceCache,
    ) -> Principal:
        token = self._token(security, now=now, secure=secure)
        return self._decide(token, users.find(token.username), nonce_cache, now)

    def _token(
        self, security: etree._Element | None, *, now: datetime, secure: bool
    ) -> UntrustedUsernameToken:
        """Steps 1-3: the token, its transport and its age."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if security is None:
            raise MissingTokenError("a WS-Security UsernameToken is required")
        token = parse_username_token(security)  # 1.
        if not token.digest and not secure:  # 2.
            raise InsecureTransportError(
                "PasswordText is accepted only over TLS (use https, or PasswordDigest)"
            )
        if token.digest and (token.nonce is None or token.created is None):
            raise MalformedTokenError("a PasswordDigest token needs a Nonce and a Created")
        if token.created is not None:  # 3.
            skew = (token.created - now).total_seconds()
            if abs(skew) > self.window.total_seconds():
                raise StaleTokenError(
                    f"the token was created {abs(skew):.0f} s "
                    f"{'in the future' if skew > 0 else 'ago'}; accepted: "
                    f"+-{self.window.total_seconds():.0f} s (check the clocks)",
                    skew_seconds=skew,
                )
        expires = _timestamp_expiry(security)
        if expires is not None and expires <= now:
            raise StaleTokenError("the wsu:Timestamp has expired",
                                  skew_seconds=(expires - now).total_seconds())
        return token

    def _decide(
        self,
        token: UntrustedUsernameToken,
        user: User | None,
        nonce_cache: NonceCache,
        now: datetime,
    ) -> Principal:
        """Step 4 (the credentials of ``user``, the looked-up user or None), then 5."""
        if not self._check(token, user):
            raise BadCredentialsError(BAD_CREDENTIALS,
                                      reason=f"bad credentials for {token.username!r}")
        assert user is not None
        return self._admit(token, user, nonce_cache, now)

    def _admit(
        self, token: UntrustedUsernameToken, user: User, nonce_cache: NonceCache, now: datetime
    ) -> Principal:
        """Step 5: the token's Nonce is new (replay cache), then the principal."""
        if token.nonce is not None:  # 5.
            base = token.created or now
            expires_at = max(base + self.window, now) + timedelta(seconds=1)
            if not nonce_cache.remember(user.name, token.nonce, now=now,
                                        expires_at=expires_at):
                raise ReplayedNonceError("the token's Nonce was used before (replay refused)",
                                         reason=f"nonce replay for {user.name!r}")
        return Principal(user.name, tuple(user.roles),
                         "PasswordDigest" if token.digest else "PasswordText")

    def _stored(self, user: User | None) -> StoredCredential | None:
        if user is None:
            return None
        try:
            return StoredCredential.parse(user.password_hash)
        except CredentialFormatError as exc:
            log.error("stored credential of user %r is unusable: %s", user.name, exc.message)
            return None

    def _check(self, token: UntrustedUsernameToken, user: User | None) -> bool:
        stored = self._stored(user)
        if not token.digest:
            if stored is None or user is None:
                return self.verifier.burn(token.password)
            try:
                return self.verifier.verify(user.name, token.password, stored.password_hash)
            except CredentialFormatError as exc:
                log.error("password hash of user %r is unusable: %s", user.name, exc.message)
                return False
        if self.digest_key is None:
            raise BadCredentialsError(
                "PasswordDigest is not enabled on this server; use PasswordText over TLS",
                reason="PasswordDigest without a configured digest key",
            )
        assert token.nonce is not None and token.created_text is not None
        claimed = _strict_b64(token.password, "the PasswordDigest")
        secret: str | None = None
        if user is not None and stored is not None and stored.sealed_password is not None:
            try:
                secret = self.digest_key.unseal(user.name, stored.sealed_password)
            except CredentialFormatError as exc:
                log.error("digest secret of user %r is unusable: %s", user.name, exc.message)
        # Same work whether or not the user (or its secret) exists.
        expected = password_digest(token.nonce, token.created_text,
                                   secret if secret is not None else secrets.token_hex(16))
        return hmac.compare_digest(expected, claimed) and secret is not None


def authenticate(
    security: etree._Element | None,
    *,
    users: UserLookup,
    now: datetime,
    secure: bool,
    nonce_cache: NonceCache,
    window: int = DEFAULT_WINDOW,
    digest_key: DigestKey | None = None,
    verifier: PasswordVerifier | None = None,
) -> Principal:
    """One-shot form of :meth:`Authenticator.authenticate` (a server builds one
    :class:`Authenticator` at start-up instead, so the password cache is shared)."""
    auth = Authenticator(nonce_cache=nonce_cache, window=window, digest_key=digest_key,
                         verifier=verifier)
    return auth.authenticate(security, users=users, now=now, secure=secure)


# ---------------------------------------------------------------------------- client side


def format_created(when: datetime) -> str:
    """``when`` as the wsu:Created text this module emits (UTC, milliseconds, ``Z``)."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def build_security_header(
    username: str,
    password: str,
    *,
    mode: Mode = "digest",
    now: datetime | None = None,
    nonce: bytes | None = None,
    must_understand: bool = True,
) -> etree._Element:
    """A ``wsse:Security`` element with a UsernameToken for ``username``.

    ``mode="digest"``: PasswordDigest; ``"text"``: PasswordText (the server
    accepts it only over TLS). Both carry a fresh 16-byte Nonce and a Created
    (``now``, default the current time), so both are replay-checked.
    ``must_understand`` sets ``soap:mustUnderstand="1"`` (this server processes
    the header). Append the result to the SOAP Header.
    """
    soap_env = "http://schemas.xmlsoap.org/soap/envelope/"
    nonce = secrets.token_bytes(MIN_NONCE_BYTES) if nonce is None else nonce
    created = format_created(now or datetime.now(UTC))
    security = etree.Element(SECURITY_TAG, nsmap={"wsse": WSSE_NS, "wsu": WSU_NS})
    if must_understand:
        security.set(f"{{{soap_env}}}mustUnderstand", "1")
    token = etree.SubElement(security, f"{{{WSSE_NS}}}UsernameToken")
    etree.SubElement(token, f"{{{WSSE_NS}}}Username").text = username
    pw = etree.SubElement(token, f"{{{WSSE_NS}}}Password")
    if mode == "digest":
        pw.set("Type", PASSWORD_DIGEST)
        pw.text = base64.b64encode(password_digest(nonce, created, password)).decode("ascii")
    elif mode == "text":
        pw.set("Type", PASSWORD_TEXT)
        pw.text = password
    else:
        raise ValueError("mode must be 'digest' or 'text'")
    nonce_el = etree.SubElement(token, f"{{{WSSE_NS}}}Nonce", EncodingType=BASE64_BINARY)
    nonce_el.text = base64.b64encode(nonce).decode("ascii")
    etree.SubElement(token, f"{{{WSU_NS}}}Created").text = created
    return security


class UsernameTokenPlugin:
    """A zeep ``wsse=`` object: adds a fresh :func:`build_security_header` to every request
    (``zeep.Client(wsdl, wsse=UsernameTokenPlugin(user, password, mode="digest"))``)."""

    def __init__(self, username: str, password: str, *, mode: Mode = "digest") -> None:
        self.username = username
        self._password = password
        self.mode: Mode = mode

    def __repr__(self) -> str:
        return f"UsernameTokenPlugin({self.username!r}, mode={self.mode!r})"

    def apply(self, envelope: etree._Element, headers: Any) -> tuple[etree._Element, Any]:
        """Insert the header (zeep calls this before sending)."""
        soap_env = etree.QName(envelope).namespace
        header = envelope.find(f"{{{soap_env}}}Header")
        if header is None:
            header = etree.Element(f"{{{soap_env}}}Header")
            envelope.insert(0, header)
        for old in header.findall(SECURITY_TAG):
            header.remove(old)
        header.append(build_security_header(self.username, self._password, mode=self.mode))
        return envelope, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        """Responses carry no token to check."""
        return envelope
