"""A service's TLS: its --tls-cert/--tls-key/--tls-client-ca files -> gRPC server credentials.

Checked at start, before the port is bound: a missing, unreadable or non-PEM file, a key
that is not the certificate's, or a certificate without its key stops the service with
one line naming the flag and the file. gRPC alone would start and then fail every
handshake, which looks like a network problem to every client.

With --tls-client-ca the server requires and verifies a client certificate (mTLS): a
client without one, or with one from another CA, is refused at the handshake.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from services.common.config import setting
from voxcache.tls import TLSError, check_ca, check_pair, read_pem

__all__ = ["ServerTLS", "ServerTLSSettings", "TLSError"]


@dataclass(frozen=True)
class ServerTLS:
    """The three TLS settings of a service; empty strings are unset (plaintext)."""

    cert: str = ""
    key: str = ""
    client_ca: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert or self.key or self.client_ca)

    @property
    def mutual(self) -> bool:
        return bool(self.client_ca)

    def describe(self) -> str:
        """For the start-up log line: what a client needs to connect."""
        if not self.enabled:
            return "plaintext"
        return "mTLS (client certificates required)" if self.mutual else "TLS"

    def credentials(self) -> grpc.ServerCredentials | None:
        """None for plaintext; otherwise checked credentials (TLSError names the flag and file)."""
        if not self.enabled:
            return None
        if not self.cert or not self.key:
            missing = "--tls-key" if self.cert else "--tls-cert"
            given = "--tls-cert" if self.cert else ("--tls-key" if self.key else "--tls-client-ca")
            raise TLSError(f"{given} is set but {missing} is not: TLS needs the server's certificate and its key")
        cert = read_pem(self.cert, "--tls-cert")
        key = read_pem(self.key, "--tls-key")
        check_pair(self.cert, self.key, "--tls-cert/--tls-key:")
        client_ca = read_pem(self.client_ca, "--tls-client-ca") if self.client_ca else None
        if client_ca is not None:
            check_ca(client_ca, f"--tls-client-ca {self.client_ca}")
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
        )


@dataclass(frozen=True)
class ServerTLSSettings:
    """The TLS settings both services share (a base of their settings dataclasses)."""

    tls_cert: str = setting("", "PEM certificate (chain) this service presents; with --tls-key, the port speaks TLS")
    tls_key: str = setting("", "PEM private key of --tls-cert")
    tls_client_ca: str = setting(
        "", "PEM CA bundle: when set, clients must present a certificate it signed (mTLS); refused otherwise"
    )

    @property
    def tls(self) -> ServerTLS:
        return ServerTLS(self.tls_cert, self.tls_key, self.tls_client_ca)
