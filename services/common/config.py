"""Settings dataclasses -> command-line flags with environment defaults.

Precedence: `--flag`, then `VOXCACHE_<FIELD>`, then the dataclass default. Each
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


def env_name(field: str) -> str:
    return f"VOXCACHE_{field.upper()}"


def parse_settings(
    cls: type[S],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    help: Mapping[str, str],
    secrets: Sequence[str] = (),
) -> S:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = field.default
        convert = Path if isinstance(default, Path) else type(default)
        env = env_name(field.name)
        if field.name in secrets:
            values[field.name] = os.environ.get(env, default)
            continue
        raw = os.environ.get(env)
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=convert,
            default=convert(raw) if raw is not None else default,
            help=f"{help.get(field.name, '')} [{env}, default: {default}]",
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
