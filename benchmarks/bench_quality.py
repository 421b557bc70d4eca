"""Counterfactual quality on the shipped MNIST models: validity, oracle validity and L1 on 100 held-out digits with
target (label+1)%10 and 120 digits of the pairs 3<->8, 4<->9, 5<->6 (the samples of docs/benchmarks.md).

Run: .venv/bin/python benchmarks/bench_quality.py [--method latent|mirror|causal|pixel|pgd] [--option lr=0.4 ...]
Options are passed to cfnb.explain (values are read as Python literals); without any, the shipped defaults.
"""
from __future__ import annotations

import argparse
import ast

import torch

import cfnb
from cfnb.data import load_mnist
from cfnb.metrics import oracle_validity
from cfnb.models import load

PAIRS = {3: 8, 8: 3, 4: 9, 9: 4, 5: 6, 6: 5}


def samples() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every 10th test digit towards (label+1)%10; every 5th test digit of the pairs towards its partner."""
    test = load_mnist("test")
    every = torch.arange(0, len(test), 10)
    in_pairs = torch.tensor([int(label) in PAIRS for label in test.labels])
    images, labels = test.images[in_pairs][::5], test.labels[in_pairs][::5]
    return {"all targets": (test.images[every], (test.labels[every] + 1) % 10),
            "pairs": (images, torch.tensor([PAIRS[int(label)] for label in labels]))}


def parse_options(pairs: list[str]) -> dict[str, object]:
    options = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        options[key] = ast.literal_eval(value)
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="latent")
    parser.add_argument("--option", action="append", default=[], help="NAME=VALUE for cfnb.explain (repeatable)")
    args = parser.parse_args()
    classifier, oracle = load("mnist-classifier"), load("mnist-oracle")
    helpers = {"latent": {"generator": load("mnist-vae")}, "causal": {"generator": load("mnist-vae")}}
    chosen = parse_options(args.option)
    options = {**helpers.get(args.method, {}), **chosen}
    print(f"method {args.method}, options {chosen or 'shipped defaults'}")
    print(f"{'sample':<12}{'n':>5}{'validity':>10}{'oracle':>8}{'L1':>8}{'median steps':>14}{'seconds':>9}")
    for name, (images, target) in samples().items():
        result = cfnb.explain(classifier, images, target, method=args.method, progress=False, **options)
        agree = oracle_validity(oracle, result.counterfactual, result.target)
        l1 = (result.counterfactual - result.original).abs().mean().item()
        print(f"{name:<12}{len(result):>5}{result.validity:>10.2f}{agree:>8.2f}{l1:>8.3f}"
              f"{result.steps_used.float().median().item():>14.0f}{result.seconds:>9.1f}")


if __name__ == "__main__":
    main()
