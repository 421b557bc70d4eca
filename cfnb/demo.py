"""``cfnb demo``: counterfactuals for a handful of held-out MNIST digits with the shipped models."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

PAIRS = {3: 8, 8: 3, 4: 9, 9: 4, 5: 6, 6: 5}


def pick_digits(labels: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of ``count`` held-out digits (cycling through the pairs 3↔8, 4↔9, 5↔6) and their targets."""
    chosen: list[int] = []
    targets: list[int] = []
    used: set[int] = set()
    sources = list(PAIRS) + [d for d in range(10) if d not in PAIRS]
    while len(chosen) < count:
        for digit in sources:
            if len(chosen) == count:
                break
            candidates = [int(i) for i in (labels == digit).nonzero().flatten() if int(i) not in used]
            if not candidates:
                continue
            used.add(candidates[0])
            chosen.append(candidates[0])
            targets.append(PAIRS.get(digit, (digit + 1) % 10))
    return torch.tensor(chosen), torch.tensor(targets)


def run_demo(out: Path, count: int = 8, methods: Sequence[str] = ("latent", "mirror", "pixel")) -> int:
    """Explain ``count`` held-out digits with each method; print a table; write one HTML gallery per method."""
    from . import explain
    from .data import load_mnist
    from .metrics import oracle_agrees
    from .models import load
    from .viz import gallery_html

    data = load_mnist("test", source="embedded")
    classifier, oracle = load("mnist-classifier"), load("mnist-oracle")
    helpers = {"latent": {"generator": load("mnist-vae")}, "causal": {"generator": load("mnist-vae")}}
    index, targets = pick_digits(data.labels, count)
    out.parent.mkdir(parents=True, exist_ok=True)
    images = data.images[index]
    print(f"{'method':<8} {'digit':>5} {'source':>6} {'target':>6} "
          f"{'prediction':>10} {'valid':>5} {'oracle':>6} {'L1':>7}")
    written = []
    for method in methods:
        result = explain(classifier, images, targets, method=method, progress=False, **helpers.get(method, {}))
        believed = oracle_agrees(oracle, result.counterfactual, result.target)
        for i in range(len(result)):
            l1 = (result.counterfactual[i] - result.original[i]).abs().mean().item()
            print(f"{method:<8} {int(index[i]):>5} {int(result.source[i]):>6} {int(result.target[i]):>6} "
                  f"{int(result.prediction[i]):>10} {'yes' if result.valid[i] else 'no':>5} "
                  f"{'yes' if believed[i] else 'no':>6} {l1:>7.4f}")
        print(f"{method:<8} validity {result.validity:.2f}, oracle validity {believed.float().mean().item():.2f}, "
              f"{result.seconds:.2f} s for {len(result)} digits")
        page = out if method == methods[0] else out.with_name(f"{out.stem}-{method}{out.suffix}")
        title = f"cfnb demo: {method} counterfactuals of held-out MNIST digits"
        written.append(gallery_html(result, page, title=title))
    for page in written:
        print(f"wrote {page}")
    return 0
