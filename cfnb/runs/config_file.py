"""``cfnb explain CONFIG``: explain a whole data set to disk as a config file (JSON, or TOML) describes it.

Example (relative paths are taken from the config file's folder)::

    {
      "classifier": "mnist-classifier",                 # a shipped model (see `cfnb models`) or a model folder
      "data": {"name": "mnist", "split": "test"},        # or "photos/", "celeba:ROOT", "digits.npz"
      "target": "runner-up",                             # a class index or name, "runner-up" or "next"
      "method": "latent",
      "generator": "mnist-vae",
      "oracle": "mnist-oracle",
      "options": {"steps": 100},
      "batch_size": 64,
      "output": "mnist-latent-run"
    }

Under ``torchrun --nproc_per_node=N -m cfnb explain CONFIG`` every process reads the same config and takes its
share of the batches.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..config_files import NAMED_DATA_KEYS, ConfigError, check_named_data, read_config_object, synth_faces_arguments

MODEL_ROLES = ("generator", "decoder", "editor", "attribute_classifier", "oracle", "fid_network")
KEYS = {
    "classifier": "shipped classifier or model folder to explain (required)",
    "attribute": "for a multi-label classifier: explain this one attribute (its two classes, \"not A\" and \"A\")",
    "data": "a spec for cfnb.data.open_data (image folder, celeba:ROOT, file.npz), {\"spec\": ..., \"size\": N, "
            "\"split\": ...}, or {\"name\": mnist | colored_mnist | patched_mnist | synth_faces, ...} (required)",
    "target": "a class index or name for every image, \"runner-up\" or \"next\" (required)",
    "method": "a registered method (default \"latent\")",
    "options": "the method's options, e.g. {\"steps\": 100}",
    "generator": "shipped model or model folder passed as generator=",
    "decoder": "shipped model or model folder passed as decoder=",
    "editor": "shipped model or model folder passed as editor=",
    "attribute_classifier": "shipped model or model folder passed as attribute_classifier= (also MNAC)",
    "oracle": "shipped model or model folder judging the counterfactuals",
    "fid_network": "shipped model or model folder whose features FID uses (default: the oracle, else the classifier)",
    "batch_size": "images per batch and shard (default 64)",
    "seed": "batch k is explained with seed + k (default 0)",
    "limit": "explain only the first N images",
    "device": "where to compute, e.g. \"cpu\" or \"cuda\" (default: the classifier's device)",
    "progress": "show a progress bar (default true)",
    "output": "the run's folder (default: <config name>-run beside the config)",
}
SPEC_KEYS = {"spec", "size", "split"}


def read_config(path: str | Path) -> dict[str, Any]:
    """Read and check a config file: an object of known keys with values of the right kinds.

    Raises:
        ConfigError: unreadable file, unknown or missing keys, a bad value (the message names it).
    """
    path = Path(path)
    config = read_config_object(path, KEYS, ("classifier", "data", "target"))
    for key in ("classifier", "method", "output", "device", *MODEL_ROLES):
        if key in config and not (isinstance(config[key], str) and config[key]):
            raise ConfigError(f"{path}: {key!r} must be a non-empty string, got {config[key]!r}")
    for key, low in (("batch_size", 1), ("seed", 0), ("limit", 1)):
        value = config.get(key)
        if key in config and not (key == "limit" and value is None) and (
                isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ConfigError(f"{path}: {key!r} must be an int >= {low}, got {value!r}")
    if isinstance(config["target"], bool) or not isinstance(config["target"], (int, str)):
        raise ConfigError(f"{path}: 'target' must be {KEYS['target']}, got {config['target']!r}")
    if not isinstance(config.get("options", {}), dict):
        raise ConfigError(f"{path}: 'options' must be an object of option values, got {config['options']!r}")
    if not isinstance(config.get("progress", True), bool):
        raise ConfigError(f"{path}: 'progress' must be true or false, got {config['progress']!r}")
    _check_data(path, config["data"])
    return config


def _check_data(path: Path, data: Any) -> None:
    if isinstance(data, str) and data:
        return
    if isinstance(data, dict) and "spec" in data:
        strangers = sorted(set(data) - SPEC_KEYS)
        if strangers or not isinstance(data["spec"], str):
            raise ConfigError(f"{path}: a data spec object takes {sorted(SPEC_KEYS)} with a string 'spec', got "
                              f"{data!r}")
        return
    check_named_data(path, data, list(NAMED_DATA_KEYS), KEYS["data"])


def _beside(folder: Path, name: str) -> str:
    """``name`` taken from the config's folder when it is a relative path that exists there."""
    candidate = folder / name
    return str(candidate) if not Path(name).is_absolute() and candidate.exists() else name


def load_model(name: str, role: str, folder: Path) -> Any:
    """The shipped model ``name`` or the model folder at ``name``, with a ConfigError naming ``role`` if none."""
    from ..models import load
    from ..models.registry import read_registry

    try:
        return load(name if name in read_registry() else _beside(folder, name))
    except (KeyError, FileNotFoundError, ValueError) as error:
        raise ConfigError(f"{role}: {error.args[0] if error.args else error}") from None


def load_data(data: Any, folder: Path) -> Any:
    """The data a checked config's ``data`` names (a spec's relative paths taken from the config's folder)."""
    from ..data import colored_mnist, load_mnist, open_data, patched_mnist, synth_faces

    if isinstance(data, str):
        data = {"spec": data}
    data = dict(data)
    if "spec" in data:
        spec = data.pop("spec")
        prefix = "celeba:" if spec.startswith("celeba:") else ""
        return open_data(prefix + _beside(folder, spec[len(prefix):]), **data)
    name = data.pop("name")
    if name == "mnist":
        return load_mnist(data.get("split", "test"), source="embedded")
    if name in ("colored_mnist", "patched_mnist"):
        data.setdefault("split", "test")
        return (colored_mnist if name == "colored_mnist" else patched_mnist)(**data)
    return synth_faces(**synth_faces_arguments(data))


def attribute_view(classifier: Any, attribute: Any) -> Any:
    """The 2-class view (``not A`` / ``A``) of one output of a multi-label classifier, for ``"attribute"``."""
    from ..models import AttributeClassifier

    names = list(getattr(classifier, "attribute_names", None) or [])
    if not names:
        raise ConfigError("'attribute' needs a multi-label classifier with attribute_names (e.g. one trained by "
                          "`cfnb fit classifier` on data with attributes)")
    if attribute not in names:
        raise ConfigError(f"'attribute': {attribute!r} is not one of the classifier's attributes ({', '.join(names)})")
    return AttributeClassifier(classifier, names, attribute)


def run_config(path: str | Path, out: str | Path | None = None, overwrite: bool = False) -> int:
    """Run ``cfnb explain`` on the config file at ``path``.

    Args:
        path: the config file.
        out: the run's folder, overriding the config's ``output``.
        overwrite: replace another configuration's results in the folder.

    Returns:
        0 on success, 2 when the config (or the run it describes) is invalid; the reason goes to stderr.
    """
    from .runner import explain_dataset

    path = Path(path)
    try:
        config = read_config(path)
        folder = path.parent
        models = {role: load_model(config[role], role, folder) for role in MODEL_ROLES if role in config}
        target = Path(out) if out is not None else folder / config.get("output", path.stem + "-run")
        classifier = load_model(config["classifier"], "classifier", folder)
        if "attribute" in config:
            classifier = attribute_view(classifier, config["attribute"])
        summary = explain_dataset(
            classifier, load_data(config["data"], folder),
            config["target"], config.get("method", "latent"), out=target, **models,
            batch_size=config.get("batch_size", 64), seed=config.get("seed", 0), limit=config.get("limit"),
            device=config.get("device"), progress=config.get("progress", True), overwrite=overwrite,
            **config.get("options", {}))
    except (ValueError, TypeError, KeyError, FileNotFoundError) as error:
        message = error.args[0] if error.args else repr(error)
        print(f"cfnb explain: {message}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":
        print(summary)
        print(f"wrote {summary.out} ({summary.rows_path.name}, {summary.summary_path.name})")
    return 0
