"""Certificates made by scripts/gen_certs.sh (the script users run), once per session.

`certs` is the CA the services trust; `other_certs` is a second, unrelated CA with its
own server and client certificates, for the refusals.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common.paths import REPO_ROOT
from services.common.tls import ServerTLS
from voxcache import TLS


@dataclass(frozen=True)
class Certs:
    dir: Path

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def server(self, *, mutual: bool) -> ServerTLS:
        return ServerTLS(self.path("server.pem"), self.path("server.key"), self.path("ca.pem") if mutual else "")

    def client_as(self, tenant: str) -> TLS:
        """A client certificate whose CN is `tenant` (made for TENANTS only)."""
        return TLS(
            ca=self.path("ca.pem"), cert=self.path(f"client-{tenant}.pem"), key=self.path(f"client-{tenant}.key")
        )

    def client(self, *, with_cert: bool) -> TLS:
        if not with_cert:
            return TLS(ca=self.path("ca.pem"))
        return TLS(ca=self.path("ca.pem"), cert=self.path("client.pem"), key=self.path("client.key"))


#: Extra client certificates, CN = tenant, for `--auth mtls`.
TENANTS = ("acme", "globex", "synthesizer")


def _generate(folder: Path) -> Certs:
    script = str(REPO_ROOT / "scripts" / "gen_certs.sh")
    subprocess.run([script, str(folder), "1", *TENANTS], check=True, capture_output=True)
    return Certs(folder)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return _generate(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return _generate(tmp_path_factory.mktemp("other-certs"))
