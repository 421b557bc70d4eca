"""Kernel-side latency of the AttributePanel's live update: a slider moves, the editor redraws the face, the
classifier reads it, the PNG and the readout widgets update (``panel.latencies``). The browser's own rendering
comes on top (a few ms for a 64x64 PNG).

Run: .venv/bin/python benchmarks/bench_widgets.py [--moves 40]
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
    parser.add_argument("--moves", type=int, default=40)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    faces = synth_faces(8, seed=7)
    panel = cfnb.AttributePanel(load("faces-classifier"), faces.images, editor=load("faces-editor"), throttle_s=0.0)
    panel.latencies.clear()
    slider = panel.sliders[0]
    for move in range(args.moves):
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


if __name__ == "__main__":
    main()
