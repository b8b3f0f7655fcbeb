"""TLS material for voxcache channels: PEM files (or bytes) read once, checked, turned into credentials.

gRPC itself accepts any bytes as a certificate and fails only at the handshake, as an
UNAVAILABLE that names no file. Reading and checking here, when the client or service is
built, turns a wrong path, a key that does not belong to its certificate or a file that
is not PEM into one message that names the file. Only the standard library's `ssl`
is used (no extra dependency for SDK users).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

PemSource = bytes | str | os.PathLike[str]

#: Where the CLI (and `TLS.from_env`) find its TLS files. Not VOXCACHE_TLS_CERT/KEY: those
#: are the services' own certificate settings, read by `voxcache up`'s services from the same
#: environment, and a client certificate must never become a server's.
ENV_CA = "VOXCACHE_TLS_CA"
ENV_CERT = "VOXCACHE_TLS_CLIENT_CERT"
ENV_KEY = "VOXCACHE_TLS_CLIENT_KEY"


class TLSError(ValueError):
    """A certificate, key or CA that cannot be used; the message names the file (or the setting)."""


def read_pem(source: PemSource, what: str) -> bytes:
    """The bytes of a PEM file (or PEM bytes as given), refusing what is not PEM at all."""
    if isinstance(source, bytes):
        data, name = source, f"{what} (bytes)"
    else:
        name = f"{what} {os.fspath(source)}"
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise TLSError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise TLSError(f"{name}: a folder, not a PEM file") from None
        except PermissionError:
            raise TLSError(f"{name}: not readable by this user (check its owner and mode)") from None
        except OSError as exc:
            raise TLSError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if b"-----BEGIN " not in data:
        raise TLSError(f"{name}: not a PEM file (no -----BEGIN line)")
    return data


def check_pair(cert: PemSource, key: PemSource, what: str) -> None:
    """Refuse a certificate and key that `ssl` cannot load together (wrong key, garbled PEM).

    Only files can be checked this way (`ssl` loads chains from paths only); PEM given as
    bytes is checked by gRPC at the handshake.
    """
    if isinstance(cert, bytes) or isinstance(key, bytes):
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_cert_chain(os.fspath(cert), os.fspath(key))
    except ssl.SSLError as exc:
        reason = "the key does not match the certificate" if "MISMATCH" in str(exc) else f"unusable ({exc.reason})"
        raise TLSError(f"{what} certificate {os.fspath(cert)} with key {os.fspath(key)}: {reason}") from None


def check_ca(ca: bytes, what: str) -> None:
    """Refuse a CA bundle that holds no loadable certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=ca.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as exc:
        raise TLSError(f"{what}: no usable CA certificate ({exc})") from None


@dataclass(frozen=True)
class TLS:
    """How a client reaches a TLS server: the CA that signed it, and for mTLS a certificate + key.

    Each is a path or PEM bytes. `ca=None` trusts the system's roots. `server_name` overrides
    the name checked against the server's certificate (e.g. reach `10.0.0.5:50051` whose
    certificate says `embedder`).
    """

    ca: PemSource | None = None
    cert: PemSource | None = None
    key: PemSource | None = None
    server_name: str | None = None

    @classmethod
    def from_env(cls) -> TLS | None:
        """VOXCACHE_TLS_CA, VOXCACHE_TLS_CLIENT_CERT, VOXCACHE_TLS_CLIENT_KEY; None when none is set."""
        ca, cert, key = (os.environ.get(name) or None for name in (ENV_CA, ENV_CERT, ENV_KEY))
        if ca is None and cert is None and key is None:
            return None
        return cls(ca=ca, cert=cert, key=key)

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials, after reading and checking every file (TLSError names the bad one)."""
        if (self.cert is None) != (self.key is None):
            given, missing = ("certificate", "key") if self.key is None else ("key", "certificate")
            raise TLSError(f"a client {given} needs its {missing} too (mTLS takes both, plain TLS neither)")
        ca = read_pem(self.ca, "CA") if self.ca is not None else None
        if ca is not None:
            check_ca(ca, f"CA {self.ca if not isinstance(self.ca, bytes) else '(bytes)'}")
        cert = read_pem(self.cert, "client certificate") if self.cert is not None else None
        key = read_pem(self.key, "client key") if self.key is not None else None
        if self.cert is not None and self.key is not None:
            check_pair(self.cert, self.key, "client")
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

    def options(self) -> list[tuple[str, str]]:
        """Channel options this TLS setting adds (the server name override, when set)."""
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
