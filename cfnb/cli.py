"""The ``cfnb`` command: ``demo``, ``train NAME``, ``fit KIND``, ``models``, ``audit CONFIG``."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _models(args: argparse.Namespace) -> int:
    from .models import available

    cards = available()
    if not cards:
        print("no shipped models found")
        return 1
    width = max(len(c.name) for c in cards)
    for card in cards:
        figures = ", ".join(f"{k}={v}" for k, v in card.quality.items()
                            if isinstance(v, (int, float)) and not k.startswith("train_"))
        print(f"{card.name:<{width}}  {card.architecture:<16} {card.data}")
        print(f"{'':<{width}}  {figures}")
        print(f"{'':<{width}}  sha256 {card.sha256[:16]}…  ({card.path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .training.recipes import RECIPES, train_and_save

    names = sorted(RECIPES) if args.name == "all" else [args.name]
    for name in names:
        if name not in RECIPES:
            print(f"unknown model {name!r}; known: {', '.join(sorted(RECIPES))}, or 'all'", file=sys.stderr)
            return 2
        print(f"training {name} ...")
        out = Path(args.out) if args.out else None
        card = train_and_save(name, out) if out else train_and_save(name)
        print(f"{name}: {card.quality}  -> {card.path if not out else out / card.file}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.out), count=args.count, methods=args.methods.split(","))


def _audit(args: argparse.Namespace) -> int:
    from .audit.config import run_config

    return run_config(Path(args.config), Path(args.out) if args.out else None)


def _explain(args: argparse.Namespace) -> int:
    from .runs.config_file import run_config

    return run_config(Path(args.config), Path(args.out) if args.out else None, overwrite=args.overwrite)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cfnb", description="Counterfactual explanations of image classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="explain held-out MNIST digits with the shipped models; write an HTML page")
    demo.add_argument("--out", default="cfnb-demo.html", help="HTML page to write (default: cfnb-demo.html)")
    demo.add_argument("--count", type=int, default=8, help="how many held-out digits (default: 8)")
    demo.add_argument("--methods", default="latent,mirror,pixel",
                      help="comma-separated methods (default: latent,mirror,pixel)")
    demo.set_defaults(run=_demo)
    train = sub.add_parser("train", help="reproduce a shipped model's weights from the embedded data")
    train.add_argument("name", help="model name (see `cfnb models`), or 'all'")
    train.add_argument("--out", default=None, help="folder for the weights and registry (default: the package's)")
    train.set_defaults(run=_train)
    fit = sub.add_parser("fit", help="train a classifier, generator, decoder or editor on your own images")
    from .training.command import add_arguments, run

    add_arguments(fit)
    fit.set_defaults(run=run)
    models = sub.add_parser("models", help="list shipped models with their measured quality")
    models.set_defaults(run=_models)
    audit = sub.add_parser("audit", help="run a spurious-correlation audit from a config file; write its HTML report")
    audit.add_argument("config", help="JSON (or TOML) config file (see docs/audits.md)")
    audit.add_argument("--out", default=None, help="HTML report path (default: from the config)")
    audit.set_defaults(run=_audit)
    explain = sub.add_parser("explain", help="explain a whole data set to disk from a config file (resumable; "
                             "torchrun --nproc_per_node=N -m cfnb explain CONFIG shards it)")
    explain.add_argument("config", help="JSON (or TOML) config file (see cfnb.runs.config_file)")
    explain.add_argument("--out", default=None, help="the run's folder (default: from the config)")
    explain.add_argument("--overwrite", action="store_true",
                         help="replace another configuration's results in the folder instead of refusing")
    explain.set_defaults(run=_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cfnb`` command and ``python -m cfnb``."""
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)
