"""``cfnb audit CONFIG``: run an audit described by a small JSON (or TOML) file and write its HTML report.

The format is described in docs/audits.md; examples live in ``docs/audit-examples/``. In short::

    {
      "classifier": "colored-mnist-biased",             # a shipped model (see `cfnb models`)
      "data": {"name": "colored_mnist", "split": "test-shuffled"},
      "factors": ["colour"],                             # optional: the data set's shortcut / all editor attributes
      "limit": 1000,
      "output": "colored-mnist-biased-audit.html"
    }

Relative paths (``output``, ``json``) are taken from the config file's folder.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..config_files import ConfigError, check_named_data, read_config_object, synth_faces_arguments

DATA_SETS = ("colored_mnist", "patched_mnist", "synth_faces")
KEYS = {
    "classifier": "shipped classifier to audit (required)",
    "data": "data set: {\"name\": one of " + ", ".join(DATA_SETS) + ", and its arguments} (required)",
    "factors": "factors to audit (default: the data set's shortcut, or every editor attribute)",
    "editor": "shipped attribute editor for synth_faces (default: faces-editor)",
    "attribute_classifier": "shipped multi-label model that reads the attributes (default: faces-classifier); "
                            "\"data\" uses the data set's true attributes",
    "labels": "attribute that is the label, for synth_faces (default: the classifier card's target_attribute)",
    "expected": "factors the classifier should rely on (default: the label attribute for synth_faces)",
    "limit": "audit the first N images",
    "batch_size": "images per batch (default 256)",
    "counterfactuals": "how many images also get a counterfactual (default 64)",
    "options": "method options for the counterfactual searches (cfnb.explain), e.g. {\"steps\": 100}",
    "bootstrap": "bootstrap replicates (default 200)",
    "seed": "seed of the bootstrap, the interventions and the counterfactuals (default 0)",
    "threshold": "flip rate at which a factor is flagged (default cfnb.audit.FLAG_THRESHOLD)",
    "min_group": "smallest group for the worst-group accuracy (default 20)",
    "gallery": "pairs per factor in the gallery (default 4)",
    "output": "HTML report to write (default: <config name>.html beside the config)",
    "json": "also write the report as JSON here (optional)",
    "progress": "show a progress bar (default true)",
}
SETTINGS = ("limit", "batch_size", "counterfactuals", "bootstrap", "seed", "threshold", "min_group", "gallery")
"""Config keys passed to ``cfnb.audit.spurious`` as ``AuditSettings`` fields."""

def read_config(path: str | Path) -> dict[str, Any]:
    """Read and check a config file (JSON, or TOML for a .toml file): known keys, required keys present.

    Raises:
        ConfigError: unreadable JSON, unknown or missing keys, a bad data description.
    """
    config = read_config_object(path, KEYS, ("classifier", "data"))
    check_named_data(path, config["data"], DATA_SETS, f"an object whose 'name' is one of {', '.join(DATA_SETS)}")
    factors = config.get("factors", [])
    if not (isinstance(factors, list) and all(isinstance(f, str) for f in factors)):
        raise ConfigError(f"{path}: 'factors' must be a list of names, got {config['factors']!r}")
    return config


def _load(name: Any, role: str) -> Any:
    """The shipped model ``name`` (``cfnb.models.load``), with a ConfigError naming ``role`` when there is none."""
    from ..models import load

    if not isinstance(name, str):
        raise ConfigError(f"{role!r} must be the name of a shipped model, got {name!r}")
    try:
        return load(name)
    except KeyError as error:
        raise ConfigError(f"{role}: {error.args[0]}") from None


def build(config: dict[str, Any]) -> dict[str, Any]:
    """Turn a checked config into the arguments of ``cfnb.audit.spurious`` (models loaded, data made)."""
    from ..data import colored_mnist, patched_mnist, synth_faces
    from .planted import shortcut_factor, shortcut_generator

    data = dict(config["data"])
    name = data.pop("name")
    classifier = _load(config["classifier"], "classifier")
    seed = int(config.get("seed", 0))
    arguments: dict[str, Any] = {"classifier": classifier}
    if name in ("colored_mnist", "patched_mnist"):
        make = colored_mnist if name == "colored_mnist" else patched_mnist
        data.setdefault("split", "test-shuffled")
        dataset = make(**data)
        factor = shortcut_factor(dataset, seed=seed)
        wanted = config.get("factors", [factor.name])
        if wanted != [factor.name]:
            raise ConfigError(f"{name} has one planted factor, {factor.name!r}; got factors {wanted}")
        arguments.update(images=dataset.images, labels=dataset.labels, factors=[factor],
                         generator=shortcut_generator(dataset), expected=config.get("expected", ["shape"]))
        return arguments
    faces = synth_faces(**synth_faces_arguments(data))
    editor = _load(config.get("editor", "faces-editor"), "editor")
    reader = config.get("attribute_classifier", "faces-classifier")
    label = config.get("labels") or _card_value(classifier, "target_attribute")
    if label is None:
        raise ConfigError("synth_faces audits need 'labels': the attribute the classifier predicts (e.g. \"Smiling\")")
    if label not in faces.attribute_names:
        raise ConfigError(f"'labels' must be one of {faces.attribute_names}, got {label!r}")
    arguments.update(images=faces.images, labels=faces.attribute(label).long(),
                     factors=config.get("factors", list(editor.attribute_names)), editor=editor,
                     expected=config.get("expected", [label]))
    if reader == "data":
        arguments["attributes"] = faces.attributes
    else:
        arguments["attribute_classifier"] = _load(reader, "attribute_classifier")
    return arguments


def _card_value(model: Any, key: str) -> Any:
    from .factors import card_value

    return card_value(model, key)


def run_config(path: str | Path, out: str | Path | None = None) -> int:
    """Run the audit described by the JSON (or TOML) config at ``path``; write its HTML report (and JSON if asked).

    Args:
        path: the config file (see docs/audits.md).
        out: HTML path overriding the config's ``output``.

    Returns:
        0 on success, 2 when the config (or the audit it describes) is invalid; the reason goes to stderr.
    """
    from .spurious import spurious

    path = Path(path)
    try:
        config = read_config(path)
        arguments = build(config)
        passed = {key: config[key] for key in (*SETTINGS, "options", "progress") if key in config}
        report = spurious(**arguments, **passed)
    except (ConfigError, ValueError, TypeError, KeyError) as error:
        message = error.args[0] if error.args else repr(error)
        print(f"cfnb audit: {message}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 alone writes the merged report
        return 0
    html_path = Path(out) if out is not None else path.parent / config.get("output", path.stem + ".html")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    report.to_html(html_path)
    print(report.summary())
    print(f"wrote {html_path}")
    if "json" in config:
        json_path = path.parent / config["json"]
        report.to_json(json_path)
        print(f"wrote {json_path}")
    return 0
