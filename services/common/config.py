"""Settings dataclasses -> command-line flags with environment defaults.

Precedence: `--flag`, then `VOXCACHE_<SERVICE>_<FIELD>`, then `VOXCACHE_<FIELD>`, then
the dataclass default (so one environment can configure both services). Each
service declares its settings once, as a frozen dataclass with a help text per
field; fields listed as secrets come from the environment only (never a flag,
never logged).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

S = TypeVar("S")


def env_names(field: str, service: str) -> tuple[str, str]:
    """Service-specific name first (VOXCACHE_EMBEDDER_PORT), then the shared one (VOXCACHE_PORT)."""
    return f"VOXCACHE_{service.upper()}_{field.upper()}", f"VOXCACHE_{field.upper()}"


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {raw!r}")


def parse_settings(
    cls: type[S],
    argv: Sequence[str] | None,
    *,
    prog: str,
    service: str,
    description: str,
    help: Mapping[str, str],
    secrets: Sequence[str] = (),
) -> S:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = field.default
        convert: Any = parse_bool if isinstance(default, bool) else Path if isinstance(default, Path) else type(default)
        names = env_names(field.name, service)
        raw = next((os.environ[n] for n in names if n in os.environ), None)
        if field.name in secrets:
            values[field.name] = raw if raw is not None else default
            continue
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=convert,
            default=convert(raw) if raw is not None else default,
            help=f"{help.get(field.name, '')} [{names[0]} or {names[1]}, default: {default}]",
        )
    values.update(vars(parser.parse_args(argv)))
    return cls(**values)


def redact_url(url: str) -> str:
    """redis://user:secret@host -> redis://user:***@host, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
