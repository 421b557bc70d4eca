"""Config files of ``cfnb explain CONFIG`` and ``cfnb audit CONFIG``: reading one (JSON, or TOML), checking its keys,
and the named data sets both commands describe the same way."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

NAMED_DATA_KEYS = {
    "mnist": {"name", "split"},
    "colored_mnist": {"name", "split", "correlation", "seed"},
    "patched_mnist": {"name", "split", "correlation", "patch_class", "seed"},
    "synth_faces": {"name", "n", "seed", "correlations", "size"},
}
"""The keys each named data set takes in a config's ``"data"`` object."""


class ConfigError(ValueError):
    """A config file that cannot be run; the message says what to fix."""


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:
            raise ConfigError(f"{path}: TOML configs need Python 3.11 or later (tomllib); write it as JSON") from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML ({error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None


def read_config_object(path: str | Path, keys: Mapping[str, str], required: Sequence[str]) -> dict[str, Any]:
    """The object in the config file at ``path`` (``.toml``: TOML, else JSON), checked to hold only ``keys`` (name →
    what it means, quoted when one is missing) and every key in ``required``.

    Raises:
        ConfigError: no such file, not valid JSON/TOML, not an object, unknown or missing keys.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found")
    config = _parse(path)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be an object with keys {', '.join(keys)}")
    unknown = sorted(set(config) - set(keys))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; known keys: {', '.join(keys)}")
    for key in required:
        if key not in config:
            raise ConfigError(f"{path}: missing {key!r}: {keys[key]}")
    return config


def check_named_data(path: str | Path, data: Any, names: Sequence[str], described: str) -> None:
    """Raise a ConfigError unless ``data`` is an object whose ``"name"`` is one of ``names`` and whose other keys that
    data set takes (``described``: what ``"data"`` must be, for the message)."""
    if not isinstance(data, dict) or data.get("name") not in names:
        raise ConfigError(f"{path}: 'data' must be {described}; got {data!r}")
    strangers = sorted(set(data) - NAMED_DATA_KEYS[data["name"]])
    if strangers:
        raise ConfigError(f"{path}: data set {data['name']!r} takes {sorted(NAMED_DATA_KEYS[data['name']])}, "
                          f"not {strangers}")


def synth_faces_arguments(data: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``cfnb.data.synth_faces`` a ``{"name": "synth_faces", ...}`` object asks for."""
    correlations = data.get("correlations") or []
    try:
        planted = {(source, target): float(p) for source, target, p in correlations}
    except (TypeError, ValueError):
        raise ConfigError(f"synth_faces correlations must be a list of [source, target, probability], "
                          f"got {correlations!r}") from None
    return {"n": int(data.get("n", 2000)), "seed": int(data.get("seed", 12345)), "correlations": planted or None,
            "size": int(data.get("size", 64))}
