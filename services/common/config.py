"""Settings dataclasses -> command-line flags with environment defaults.

Each service declares every setting once, as a field of a frozen dataclass made with
`setting(default, help)`: the default, the help text and whether it is a secret live in
the field, and everything else (the flag, the environment names, `--help`) is derived.
Precedence: `--flag`, then `VOXCACHE_<SERVICE>_<FIELD>`, then `VOXCACHE_<FIELD>`, then the
default (so one environment can configure both services). Secrets come from the
environment only: never a flag, never logged.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

S = TypeVar("S")


def setting(default: Any, help: str, *, secret: bool = False, shared_env: bool = True) -> Any:
    """A settings field: its default, its `--help` text, whether it is a secret, and whether the
    shared VOXCACHE_<FIELD> variable may set it (False where that name means something else)."""
    return dataclasses.field(default=default, metadata={"help": help, "secret": secret, "shared_env": shared_env})


def env_names(cls: type, field: str) -> tuple[str, ...]:
    """Service-specific name first (VOXCACHE_EMBEDDER_PORT), then the shared one (VOXCACHE_PORT)
    unless the field opts out of it."""
    service: str = cls.SERVICE  # type: ignore[attr-defined]
    own = f"VOXCACHE_{service.upper()}_{field.upper()}"
    declared = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if field in declared and not declared[field].metadata.get("shared_env", True):
        return (own,)
    return own, f"VOXCACHE_{field.upper()}"


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {raw!r}")


def parse_settings(cls: type[S], argv: Sequence[str] | None, *, prog: str, description: str) -> S:
    """Build `cls` (a frozen dataclass with a SERVICE class attribute) from flags and environment."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = field.default
        convert: Any = parse_bool if isinstance(default, bool) else Path if isinstance(default, Path) else type(default)
        names = env_names(cls, field.name)
        raw = next((os.environ[n] for n in names if n in os.environ), None)
        if field.metadata.get("secret"):
            values[field.name] = raw if raw is not None else default
            continue
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=convert,
            default=convert(raw) if raw is not None else default,
            help=f"{field.metadata.get('help', '')} [{' or '.join(names)}, default: {default}]",
        )
    values.update(vars(parser.parse_args(argv)))
    return cls(**values)


def redact_url(url: str) -> str:
    """redis://user:secret@host -> redis://user:***@host, for logs.

    The hosts are kept as written: a cluster URL names several (`h1:p1,h2:p2`), which
    urllib cannot read as one host and port."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    hosts = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{hosts}"))
