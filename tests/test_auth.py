"""Authentication without gRPC: token files, delegation, refusals, and the tokens tool."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from services.common import tokens
from services.common.auth import (
    ANONYMOUS,
    Authenticator,
    AuthSettings,
    AuthSettingsError,
    PermissionDenied,
    Principal,
    TokenFile,
    Unauthenticated,
    authenticator_from,
)


@pytest.fixture
def token_file(tmp_path: Path) -> tuple[Path, str, str]:
    path = tmp_path / "tokens.json"
    acme = tokens.add(path, "acme", note="acme backend")
    synth = tokens.add(path, "synthesizer", delegate=True)
    return path, acme, synth


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_the_file_keeps_digests_only_and_is_private(token_file: tuple[Path, str, str]) -> None:
    path, acme, synth = token_file
    text = path.read_text()
    assert acme not in text and synth not in text
    assert acme.startswith("vxc_") and len(acme) > 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [row["tenant"] for row in json.loads(text)["tokens"]] == ["acme", "synthesizer"]


def test_a_token_maps_to_its_tenant(token_file: tuple[Path, str, str]) -> None:
    path, acme, _ = token_file
    auth = Authenticator(frozenset({"token"}), tokens=TokenFile(path))
    assert auth.authenticate(bearer(acme), None) == Principal("acme", via="token")
    assert auth.authenticate({"authorization": f"bearer   {acme}"}, None).tenant == "acme"


@pytest.mark.parametrize(
    "metadata",
    [{}, {"authorization": "Bearer vxc_not-a-token"}, {"authorization": "Basic dXNlcjpwYXNz"}, {"authorization": "x"}],
)
def test_missing_or_unknown_credentials_are_unauthenticated(
    token_file: tuple[Path, str, str], metadata: dict[str, str]
) -> None:
    auth = Authenticator(frozenset({"token"}), tokens=TokenFile(token_file[0]))
    with pytest.raises(Unauthenticated):
        auth.authenticate(metadata, None)


def test_only_a_delegate_may_name_another_tenant(token_file: tuple[Path, str, str]) -> None:
    path, acme, synth = token_file
    auth = Authenticator(frozenset({"token"}), tokens=TokenFile(path))
    assert auth.authenticate({**bearer(synth), "voxcache-tenant": "acme"}, None) == Principal("acme", via="delegated")
    with pytest.raises(PermissionDenied, match="only for delegates"):
        auth.authenticate({**bearer(acme), "voxcache-tenant": "globex"}, None)
    with pytest.raises(PermissionDenied, match="invalid"):
        auth.authenticate({**bearer(synth), "voxcache-tenant": "a:b"}, None)


def test_anonymous_mode_is_one_tenant_and_refuses_to_act_for_others() -> None:
    auth = Authenticator(frozenset({"none"}))
    assert auth.authenticate({"authorization": "Bearer whatever"}, "cn") is ANONYMOUS
    with pytest.raises(PermissionDenied, match="without authentication"):
        auth.authenticate({"voxcache-tenant": "acme"}, None)


def test_mtls_identity_is_the_tenant_and_delegates_are_named() -> None:
    auth = Authenticator(frozenset({"mtls"}), delegates=frozenset({"synthesizer"}))
    assert auth.authenticate({}, "acme") == Principal("acme", via="mtls")
    assert auth.authenticate({"voxcache-tenant": "acme"}, "synthesizer").tenant == "acme"
    with pytest.raises(Unauthenticated, match="client certificate"):
        auth.authenticate({}, None)
    with pytest.raises(PermissionDenied, match="common name"):
        auth.authenticate({}, "Not A Tenant")


def test_token_and_mtls_together_prefer_the_token(token_file: tuple[Path, str, str]) -> None:
    path, acme, _ = token_file
    auth = Authenticator(frozenset({"token", "mtls"}), tokens=TokenFile(path))
    assert auth.authenticate(bearer(acme), "globex").tenant == "acme"
    assert auth.authenticate({}, "globex").tenant == "globex"


def test_rotation_and_revocation_need_no_restart(token_file: tuple[Path, str, str]) -> None:
    path, acme, _ = token_file
    auth = Authenticator(frozenset({"token"}), tokens=TokenFile(path))
    time.sleep(0.01)  # a distinct mtime on coarse file systems
    fresh = tokens.add(path, "acme")
    assert auth.authenticate(bearer(fresh), None).tenant == "acme"
    assert tokens.revoke(path, "acme") == 2
    with pytest.raises(Unauthenticated):
        auth.authenticate(bearer(acme), None)


def test_a_broken_edit_keeps_the_last_good_tokens(token_file: tuple[Path, str, str]) -> None:
    path, acme, _ = token_file
    auth = Authenticator(frozenset({"token"}), tokens=TokenFile(path))
    path.write_text("{not json")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert auth.authenticate(bearer(acme), None).tenant == "acme"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (AuthSettings(auth="token"), "needs --auth-tokens-file"),
        (AuthSettings(auth="password"), "--auth must be"),
        (AuthSettings(auth="none,token"), "--auth must be"),
        (AuthSettings(auth="token", auth_tokens_file="/nonexistent/tokens.json"), "No such file"),
    ],
)
def test_bad_settings_refuse_to_start_naming_the_setting(settings: AuthSettings, message: str) -> None:
    with pytest.raises(AuthSettingsError, match=message):
        authenticator_from(settings, verifies_clients=True)


def test_a_malformed_file_refuses_to_start_naming_the_row(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": [{"sha256": "ab" * 32, "tenant": "ok"}, {"sha256": "x", "tenant": "t"}]}))
    with pytest.raises(AuthSettingsError, match=r"tokens\[1\].*64 hex"):
        authenticator_from(AuthSettings(auth="token", auth_tokens_file=str(path)), verifies_clients=False)


def test_tokens_tool_prints_the_token_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.json"
    assert tokens.main(["add", "--file", str(path), "--tenant", "acme"]) == 0
    token = capsys.readouterr().out.strip()
    assert TokenFile(path).lookup(token) is not None
    assert tokens.main(["list", "--file", str(path)]) == 0
    assert token not in capsys.readouterr().out
    assert tokens.main(["add", "--file", str(path), "--tenant", "Bad Name"]) == 2


def test_mtls_without_client_verification_refuses_to_start() -> None:
    with pytest.raises(AuthSettingsError, match="needs --tls-client-ca"):
        authenticator_from(AuthSettings(auth="mtls"), verifies_clients=False)
    assert authenticator_from(AuthSettings(auth="mtls"), verifies_clients=True).modes == {"mtls"}
