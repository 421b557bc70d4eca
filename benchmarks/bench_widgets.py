"""Kernel-side latency of the panels.

AttributePanel's live update: a slider moves, the editor redraws the face, the classifier reads it, the PNG and the
readout widgets update (``panel.latencies``). The browser's own rendering comes on top (a few ms for a 64x64 PNG).

ComparePanel, click to all counterfactuals shown: a click on Explain for two MNIST classifiers (``mnist-classifier``
and ``mnist-oracle``, method ``latent`` with ``mnist-vae``, 100 steps each), until every column shows its
counterfactual (and until the first column shows its own, as soon as its search ends); one click per digit, the
panel built (and warmed up) once.

Run: .venv/bin/python benchmarks/bench_widgets.py [--panel attribute|compare|all] [--moves 40] [--clicks 7]
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch

import cfnb
from cfnb.data import synth_faces
from cfnb.models import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panel", choices=("attribute", "compare", "all"), default="all")
    parser.add_argument("--moves", type=int, default=40)
    parser.add_argument("--clicks", type=int, default=7)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    if args.panel in ("attribute", "all"):
        attribute_panel(args.moves)
    if args.panel in ("compare", "all"):
        compare_panel(args.clicks)


def attribute_panel(moves: int) -> None:
    """Slider move to readout in the AttributePanel, ``moves`` times."""
    faces = synth_faces(8, seed=7)
    panel = cfnb.AttributePanel(load("faces-classifier"), faces.images, editor=load("faces-editor"), throttle_s=0.0)
    panel.latencies.clear()
    slider = panel.sliders[0]
    for move in range(moves):
        before = len(panel.latencies)
        slider.value = 0.2 + 0.6 * (move % 2)  # alternate, so every move is a change
        deadline = time.perf_counter() + 10
        while len(panel.latencies) == before and time.perf_counter() < deadline:
            time.sleep(0.001)
    times = [1000 * t for t in panel.latencies]
    print(f"slider moves: {len(times)}, latency median {statistics.median(times):.0f} ms, "
          f"95th percentile {sorted(times)[int(0.95 * (len(times) - 1))]:.0f} ms, max {max(times):.0f} ms")
    for thread in threading.enumerate():  # let the panel's live-update thread finish before the interpreter exits
        if thread.name == "cfnb-live":
            thread.join(timeout=10)


def compare_panel(clicks: int) -> None:
    """Click on Explain to every column's counterfactual shown, in a ComparePanel of two MNIST classifiers."""
    from cfnb.data import load_mnist

    digits = load_mnist("test")
    start = time.perf_counter()
    panel = cfnb.ComparePanel([load("mnist-classifier"), load("mnist-oracle")], digits.images[:clicks + 1],
                              labels=digits.labels[:clicks + 1], generator=load("mnist-vae"))
    print(f"ComparePanel built (warm-up included) in {time.perf_counter() - start:.2f} s; method {panel.method.value}")
    times, firsts, kernel = [], [], []
    for click in range(clicks):
        panel.index.value = click
        blank = [bytes(column.counterfactual.image.value) for column in panel.columns]
        start = time.perf_counter()
        panel.explain_button.click()
        first = None
        while panel.comparison is None or any(bytes(column.counterfactual.image.value) == before
                                              for column, before in zip(panel.columns, blank)):
            if first is None and bytes(panel.columns[0].counterfactual.image.value) != blank[0]:
                first = time.perf_counter() - start
            if time.perf_counter() - start > 60:
                raise RuntimeError(f"no counterfactuals after 60 s: {panel.error or panel.status.value}")
            time.sleep(0.001)
        times.append(time.perf_counter() - start)
        firsts.append(times[-1] if first is None else first)
        panel.wait(30)
        comparison = panel.comparison
        kernel.append(comparison.seconds)
        steps = [int(result.steps_used[0]) for result in comparison.results]
        print(f"  digit {click}: first column {firsts[-1]:.2f} s, all {len(panel.columns)} counterfactuals shown "
              f"{times[-1]:.2f} s after the click (searches {comparison.seconds:.2f} s, steps {steps}, "
              f"valid {comparison.valid.flatten().tolist()})")
        panel.comparison = None
    print(f"ComparePanel click to all counterfactuals shown: median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s over {clicks} clicks (searches alone: median "
          f"{statistics.median(kernel):.2f} s; first column shown: median {statistics.median(firsts):.2f} s)")
    panel.close()


if __name__ == "__main__":
    main()
