"""The SDK's module layout: clients live in modules named for their service, old paths still work.

voxcache.client and voxcache.synthesis are shims kept for one release: they must
warn (pointing at the importer, or nobody sees it) and hand back the very same
objects, or isinstance checks against old and new names would disagree. The package
root must stay silent, since that is the import every user is told to write.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import grpc
import pytest

import voxcache
from voxcache import channel, embedder, synthesizer

#: What each new module defines itself, each also exported from the package root.
OWN_NAMES = {
    embedder: ["EmbedderClient", "AsyncEmbedderClient", "Embedding", "Voice", "PreloadSummary"],
    synthesizer: ["SynthesizerClient", "AsyncSynthesizerClient", "Speech", "SpeechChunk"],
}
#: Every public name the old modules had (their own and those they imported), and where it lives now.
OLD_NAMES = {
    "voxcache.client": {
        embedder: [
            "DEFAULT_TARGET",
            "DEFAULT_TIMEOUT_S",
            "AsyncEmbedderClient",
            "AudioInput",
            "EmbedderClient",
            "Embedding",
            "PreloadSummary",
            "Voice",
            "read_audio",
        ],
        channel: ["CHANNEL_OPTIONS"],
        voxcache: ["VoxcacheError"],
    },
    "voxcache.synthesis": {
        synthesizer: [
            "DEFAULT_SYNTH_TARGET",
            "DEFAULT_SYNTH_TIMEOUT_S",
            "AsyncSynthesizerClient",
            "Speech",
            "SpeechChunk",
            "SynthesizerClient",
        ],
        embedder: ["AudioInput", "Embedding", "read_audio"],
        channel: ["CHANNEL_OPTIONS"],
        voxcache: ["VoxcacheError"],
    },
}
NEW_HOME = {"voxcache.client": "voxcache.embedder", "voxcache.synthesis": "voxcache.synthesizer"}


def _import_shim_afresh(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, list[warnings.WarningMessage]]:
    """Import a shim as if for the first time (its warning fires only then); monkeypatch restores the old one."""
    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delattr(voxcache, name.rpartition(".")[2], raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # A plain import statement (not importlib.import_module), so this file is the importer.
        if name == "voxcache.client":
            import voxcache.client as shim
        else:
            import voxcache.synthesis as shim
    return shim, caught


@pytest.mark.parametrize("module", list(OWN_NAMES), ids=lambda m: m.__name__)
def test_new_modules_define_the_clients_the_package_root_exports(module: ModuleType) -> None:
    for name in OWN_NAMES[module]:
        value = getattr(module, name)
        assert value.__module__ == module.__name__, f"{name} is defined in {value.__module__}"
        assert getattr(voxcache, name) is value
        assert name in voxcache.__all__


@pytest.mark.parametrize("name", list(OLD_NAMES))
def test_old_module_warns_at_the_importer_and_names_the_new_module(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, caught = _import_shim_afresh(name, monkeypatch)
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1, [str(w.message) for w in caught]
    assert NEW_HOME[name] in str(deprecations[0].message)
    # Python shows a DeprecationWarning only when it is attributed to the caller's code.
    assert Path(deprecations[0].filename) == Path(__file__)


@pytest.mark.parametrize("name", list(OLD_NAMES))
def test_old_module_gives_the_very_same_objects(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shim, _ = _import_shim_afresh(name, monkeypatch)
    expected = {n: getattr(home, n) for home, names in OLD_NAMES[name].items() for n in names}
    assert sorted(shim.__all__) == sorted(expected)
    for attribute, value in expected.items():
        assert getattr(shim, attribute) is value, attribute


def test_package_root_and_new_modules_import_without_warnings() -> None:
    """In a fresh interpreter (here voxcache is imported already), with every warning an error."""
    code = (
        "import voxcache.channel, voxcache.embedder, voxcache.synthesizer, voxcache.cli\n"
        "from voxcache import *\n"
        "import sys\n"
        "assert 'voxcache.client' not in sys.modules and 'voxcache.synthesis' not in sys.modules\n"
    )
    src = str(Path(voxcache.__file__).parents[1])  # the same SDK this test imported
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("client", "default_timeout"),
    [
        (voxcache.EmbedderClient, embedder.DEFAULT_TIMEOUT_S),
        (voxcache.SynthesizerClient, synthesizer.DEFAULT_SYNTH_TIMEOUT_S),
        (voxcache.AsyncEmbedderClient, embedder.DEFAULT_TIMEOUT_S),
        (voxcache.AsyncSynthesizerClient, synthesizer.DEFAULT_SYNTH_TIMEOUT_S),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_every_client_opens_its_channel_with_the_shared_options(
    client: Any, default_timeout: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[str, Any]] = []

    def record(target: str, options: Any = None) -> Any:
        opened.append((target, options))
        return mock.MagicMock(name=f"channel to {target}")

    monkeypatch.setattr(grpc, "insecure_channel", record)
    monkeypatch.setattr(grpc.aio, "insecure_channel", record)
    instance = client("example:1")
    assert opened == [("example:1", channel.CHANNEL_OPTIONS)]
    assert instance.timeout == default_timeout
    assert instance._deadline(None) == default_timeout and instance._deadline(3.0) == 3.0
