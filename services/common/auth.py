"""Who is calling, and for which tenant: bearer tokens or mTLS identities mapped to tenants.

Plain Python, no gRPC: the interceptor (`services/common/auth_interceptor.py`) hands this
module a call's metadata and peer identity, and gets back a `Principal` or a refusal it can
turn into UNAUTHENTICATED / PERMISSION_DENIED. Tokens are stored only as SHA-256 digests,
so the tokens file names tenants but holds nothing that lets a reader call as one.

A *delegate* (the Synthesizer) authenticates as itself and names the tenant it acts for in
the `voxcache-tenant` header; any other caller that sets that header is refused, so one
tenant cannot claim to be another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.config import setting
from services.common.errors import ErrorKind, ServiceError

log = logging.getLogger(__name__)

#: Metadata a delegate sets to name the tenant it acts for.
TENANT_HEADER = "voxcache-tenant"
AUTHORIZATION_HEADER = "authorization"
#: Lower-case letters, digits, `_` and `-`: a tenant id becomes part of Redis keys, so no
#: `:` (the key separator) and nothing a shell or a URL would need quoted.
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MODES = ("none", "token", "mtls")


class AuthSettingsError(ValueError):
    """Authentication settings that cannot work: the service refuses to start, naming the setting."""


class Unauthenticated(ServiceError):
    kind = ErrorKind.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    kind = ErrorKind.PERMISSION_DENIED


@dataclass(frozen=True)
class Principal:
    """The caller as the services see it: the tenant whose data it may touch."""

    #: "" is the one tenant of anonymous mode (its keys are the pre-tenant layout).
    tenant: str
    #: How it was established: none, token, mtls, or delegated (a delegate acting for `tenant`).
    via: str = "none"
    #: May act for another tenant through the voxcache-tenant header.
    delegate: bool = False


ANONYMOUS = Principal("")


def validate_tenant(tenant: str, source: str) -> str:
    if not TENANT_ID.match(tenant):
        raise ValueError(f"{source}: tenant {tenant[:80]!r} is invalid: use 1-63 of a-z 0-9 _ - (first a-z or 0-9)")
    return tenant


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    tenant: str
    delegate: bool = False
    note: str = ""


class TokenFile:
    """sha256(token) -> tenant, read from a JSON file and re-read when the file changes.

    Rotation needs no restart: add the new token, move callers over, remove the old one.
    A file that turns unreadable or invalid keeps the last good table (logged), so a bad
    edit cannot lock every caller out; a file that is bad at start stops the service.

    Format: {"tokens": [{"sha256": "<hex>", "tenant": "acme", "delegate": false, "note": "..."}]}
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._table = self._load()

    @staticmethod
    def parse(raw: bytes, source: str) -> dict[str, TokenEntry]:
        try:
            document = json.loads(raw)
            rows = document["tokens"]
            if not isinstance(rows, list):
                raise TypeError("'tokens' is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f'{source}: expected {{"tokens": [...]}} JSON ({exc})') from None
        table: dict[str, TokenEntry] = {}
        for index, row in enumerate(rows):
            where = f"{source}: tokens[{index}]"
            digest = str(row.get("sha256", "")).lower() if isinstance(row, dict) else ""
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError(f"{where}: 'sha256' must be 64 hex characters (the token's SHA-256, not the token)")
            tenant = validate_tenant(str(row.get("tenant", "")), where)
            table[digest] = TokenEntry(tenant, bool(row.get("delegate", False)), str(row.get("note", "")))
        return table

    def _load(self) -> dict[str, TokenEntry]:
        stat = self.path.stat()
        table = self.parse(self.path.read_bytes(), str(self.path))
        self._stamp = (stat.st_mtime_ns, stat.st_size)
        tenants = len({entry.tenant for entry in table.values()})
        log.info("auth: %d token(s) for %d tenant(s) from %s", len(table), tenants, self.path)
        return table

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except OSError as exc:
            log.error("auth: cannot stat %s (%s); keeping the last good tokens", self.path, exc)
            return
        if (stat.st_mtime_ns, stat.st_size) == self._stamp:
            return
        with self._lock:
            try:
                self._table = self._load()
            except (OSError, ValueError) as exc:
                log.error("auth: %s is invalid (%s); keeping the last good tokens", self.path, exc)
                self._stamp = (stat.st_mtime_ns, stat.st_size)

    def lookup(self, token: str) -> TokenEntry | None:
        self._refresh()
        return self._table.get(token_digest(token))


class Authenticator:
    """Turns one call's credentials into a Principal, or refuses the call."""

    def __init__(
        self, modes: frozenset[str], *, tokens: TokenFile | None = None, delegates: frozenset[str] = frozenset()
    ) -> None:
        unknown = modes - set(MODES)
        if unknown or not modes or ("none" in modes and len(modes) > 1):
            raise AuthSettingsError(f"--auth must be none, token, mtls or token,mtls; got {','.join(sorted(modes))!r}")
        if "token" in modes and tokens is None:
            raise AuthSettingsError("--auth token needs --auth-tokens-file (python -m services.common.tokens add ...)")
        self.modes = modes
        self.tokens = tokens
        self.delegates = delegates

    @property
    def anonymous(self) -> bool:
        return self.modes == frozenset({"none"})

    def authenticate(self, metadata: Mapping[str, str], peer_identity: str | None) -> Principal:
        """`metadata`: the call's headers (lower-case keys); `peer_identity`: the client certificate's
        common name when the connection is mTLS, else None."""
        acting_for = metadata.get(TENANT_HEADER)
        caller = self._caller(metadata, peer_identity)
        if acting_for is None:
            return caller
        if self.anonymous:
            raise PermissionDenied(
                f"this service runs without authentication (one anonymous tenant) and cannot act for tenant "
                f"{acting_for[:80]!r}; start it with --auth token or mtls"
            )
        if not caller.delegate:
            raise PermissionDenied(
                f"{TENANT_HEADER} is only for delegates (the Synthesizer); tenant {caller.tenant!r} may not act "
                "for another tenant"
            )
        try:
            validate_tenant(acting_for, TENANT_HEADER)
        except ValueError as exc:
            raise PermissionDenied(str(exc)) from None
        return Principal(acting_for, via="delegated")

    def _caller(self, metadata: Mapping[str, str], peer_identity: str | None) -> Principal:
        if self.anonymous:
            return ANONYMOUS
        authorization = metadata.get(AUTHORIZATION_HEADER)
        if authorization is not None and "token" in self.modes:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("the authorization header must be 'Bearer <token>'")
            entry = self.tokens.lookup(token.strip()) if self.tokens else None
            if entry is None:
                raise Unauthenticated("the bearer token is not recognised (revoked, mistyped, or another deployment's)")
            return Principal(entry.tenant, via="token", delegate=entry.delegate)
        if peer_identity is not None and "mtls" in self.modes:
            try:
                tenant = validate_tenant(peer_identity, "client certificate common name")
            except ValueError as exc:
                raise PermissionDenied(str(exc)) from None
            return Principal(tenant, via="mtls", delegate=peer_identity in self.delegates)
        wanted = " or ".join(
            {"token": "an 'authorization: Bearer <token>' header", "mtls": "a client certificate"}[m]
            for m in sorted(self.modes)
        )
        raise Unauthenticated(f"no credentials: this service needs {wanted}")


@dataclass(frozen=True)
class AuthSettings:
    """The authentication settings both services share (a base of their settings dataclasses)."""

    auth: str = setting(
        "none",
        "who may call: none (anonymous, one tenant: for local use), token (bearer tokens of --auth-tokens-file), "
        "mtls (tenant = client certificate CN; needs --tls-client-ca) or token,mtls",
    )
    auth_tokens_file: str = setting(
        "", "JSON file of token digests -> tenants (python -m services.common.tokens); re-read when it changes"
    )
    auth_delegates: str = setting(
        "", "comma-separated client certificate CNs that may act for the tenant they name (the Synthesizer's)"
    )


def authenticator_from(settings: AuthSettings, *, verifies_clients: bool) -> Authenticator:
    """Build the Authenticator, with start-up errors that name the setting to fix.

    `verifies_clients`: the port requires client certificates (--tls-client-ca); without it a
    certificate's name proves nothing, so `mtls` refuses to start.
    """
    modes = frozenset(m.strip() for m in settings.auth.split(",") if m.strip())
    if "mtls" in modes and not verifies_clients:
        raise AuthSettingsError("--auth mtls needs --tls-client-ca (and --tls-cert/--tls-key): the CN is the tenant")
    tokens = None
    if settings.auth_tokens_file:
        path = Path(os.path.expanduser(settings.auth_tokens_file))
        try:
            tokens = TokenFile(path)
        except OSError as exc:
            raise AuthSettingsError(f"--auth-tokens-file {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise AuthSettingsError(f"--auth-tokens-file {exc}") from None
    delegates = frozenset(d.strip() for d in settings.auth_delegates.split(",") if d.strip())
    return Authenticator(modes, tokens=tokens, delegates=delegates)


def warn_if_open(authenticator: Authenticator, host: str) -> None:
    """Anonymous mode is for local use: say so loudly when it listens beyond loopback."""
    if authenticator.anonymous and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "listening on %s with --auth none: anyone who can reach this port uses one shared tenant "
            "(every voice). Set --auth token or mtls unless a private network is the only way in",
            host,
        )
