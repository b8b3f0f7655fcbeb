"""Manage the bearer-token file of `--auth token`: add a tenant's token, list, revoke.

    python -m services.common.tokens add --file tokens.json --tenant acme
    python -m services.common.tokens add --file tokens.json --tenant synthesizer --delegate
    python -m services.common.tokens list --file tokens.json
    python -m services.common.tokens revoke --file tokens.json --tenant acme

`add` prints the new token once, on stdout, and stores only its SHA-256: the token cannot be
read back from the file, so keep it where the caller's secrets live. The file is rewritten
atomically with mode 0600; running services pick the change up without a restart.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.common.auth import TokenFile, token_digest, validate_tenant

#: Recognisable in logs and secret scanners; 32 random bytes after it.
TOKEN_PREFIX = "vxc_"


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    raw = path.read_bytes()
    TokenFile.parse(raw, str(path))  # refuse to edit a file the services would refuse
    rows: list[dict[str, Any]] = json.loads(raw)["tokens"]
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump({"tokens": rows}, out, indent=2)
            out.write("\n")
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def add(path: Path, tenant: str, *, delegate: bool = False, note: str = "") -> str:
    """Append a new random token for `tenant`; returns the token (the file keeps only its digest)."""
    validate_tenant(tenant, "--tenant")
    rows = _read(path)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    rows.append({"sha256": token_digest(token), "tenant": tenant, "delegate": delegate, "note": note})
    _write(path, rows)
    return token


def revoke(path: Path, tenant: str) -> int:
    """Remove every token of `tenant`; returns how many were removed."""
    rows = _read(path)
    kept = [row for row in rows if row.get("tenant") != tenant]
    _write(path, kept)
    return len(rows) - len(kept)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.tokens", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("add", "list", "revoke"):
        command = commands.add_parser(name)
        command.add_argument("--file", type=Path, required=True, help="the tokens file (--auth-tokens-file)")
        if name != "list":
            command.add_argument("--tenant", required=True)
        if name == "add":
            command.add_argument("--delegate", action="store_true", help="may act for other tenants (Synthesizer)")
            command.add_argument("--note", default="", help="free text kept beside the digest")
    args = parser.parse_args(argv)
    try:
        if args.command == "add":
            print(add(args.file, args.tenant, delegate=args.delegate, note=args.note))
            print(f"added a token for tenant {args.tenant!r} to {args.file}; it is shown only now", file=sys.stderr)
        elif args.command == "revoke":
            removed = revoke(args.file, args.tenant)
            print(f"revoked {removed} token(s) of tenant {args.tenant!r}", file=sys.stderr)
        else:
            for row in _read(args.file):
                role = " (delegate)" if row.get("delegate") else ""
                print(f"{row['tenant']}{role}\t{row['sha256'][:12]}…\t{row.get('note', '')}")
    except (OSError, ValueError) as exc:
        print(f"tokens: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
