"""Whole data sets to disk with cfnb.explain_dataset: counterfactuals per second and peak memory (RSS) at 1,000,
5,000 and 20,000 images (MNIST test digits repeated, read lazily; each size in a fresh process), and the overhead
of the run (shards, rows, oracle, FID sums, merge) against cfnb.explain alone on the same batches (target: <= 10%).

Run: .venv/bin/python benchmarks/bench_dataset.py [--method latent|pixel|...] [--device cpu|cuda] [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset

import cfnb
import cfnb.runs.runner as runner
from cfnb.data import image_source, load_mnist
from cfnb.forward import probabilities
from cfnb.models import load


class RepeatedDigits(Dataset):
    """``size`` images: the MNIST test digits over and over (item i is digit i mod 1,000), with their labels."""

    def __init__(self, size: int):
        self.digits = load_mnist("test", source="embedded")
        self.size = size
        self.class_names = self.digits.class_names

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = index % len(self.digits)
        return self.digits.images[i], self.digits.labels[i]


def peak_rss_mb() -> float:
    """This process's peak resident set size (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class WriteTimer:
    """Seconds spent in ``write_shard`` (the disk writes of a run)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.original = runner.write_shard

    def __enter__(self) -> WriteTimer:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        runner.write_shard = timed
        return self

    def __exit__(self, *exc: object) -> None:
        runner.write_shard = self.original


def run_once(models: dict, data: Dataset, args: argparse.Namespace, out: Path) -> tuple[float, float, float, object]:
    """One run into a fresh folder: seconds, peak RSS (MiB), seconds writing shards, and its summary."""
    shutil.rmtree(out, ignore_errors=True)
    with WriteTimer() as writes:
        start = time.perf_counter()
        summary = cfnb.explain_dataset(models["classifier"], data, args.target, args.method, out=out,
                                       oracle=models["oracle"], batch_size=args.batch_size, device=args.device,
                                       progress=False, **models["helpers"], **args.options)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return seconds, peak_rss_mb(), writes.seconds, summary


def explain_alone(models: dict, data: Dataset, args: argparse.Namespace) -> float:
    """Seconds of cfnb.explain on the run's batches (same images, targets and seeds), nothing else."""
    source = image_source(data)
    classifier = models["classifier"]
    batches = []
    for k, start in enumerate(range(0, len(source), args.batch_size)):
        images, _ = source.batch(torch.arange(start, min(start + args.batch_size, len(source))))
        with torch.no_grad():
            p = probabilities(classifier.eval(), images.to(args.device))
        target = p.topk(2, dim=1).indices[:, 1] if args.target == "runner-up" else (p.argmax(1) + 1) % p.shape[1]
        batches.append((k, images, target.cpu()))
    start = time.perf_counter()
    for k, images, target in batches:
        cfnb.explain(classifier, images, target, args.method, device=args.device, seed=k, frames=2, progress=False,
                     **models["helpers"], **args.options)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def load_models(args: argparse.Namespace) -> dict:
    spec = cfnb.methods.get(args.method)
    helpers = {role: load(name).to(args.device) for role, name in (("generator", "mnist-vae"),)
               if spec.helper(role) is not None}
    return {"classifier": load("mnist-classifier").to(args.device), "oracle": load("mnist-oracle").to(args.device),
            "helpers": helpers}


def measure(args: argparse.Namespace, size: int, folder: Path) -> dict:
    """In this (fresh) process: a warm-up batch, then one run of ``size`` images (and with ``args.overhead``,
    cfnb.explain alone on the same batches first)."""
    models = load_models(args)
    run_once(models, RepeatedDigits(args.batch_size), args, folder / "warm-up")  # kernels prepared per shape
    alone = explain_alone(models, RepeatedDigits(size), args) if args.overhead else None
    seconds, peak, writing, summary = run_once(models, RepeatedDigits(size), args, folder / "run")
    return {"size": size, "seconds": seconds, "peak": peak, "writing": writing, "alone": alone,
            "validity": summary.validity, "oracle": summary.oracle_validity, "fid": summary.fid}


def in_child(args: argparse.Namespace, size: int, overhead: bool = False) -> dict:
    """``measure`` in a child process, so that each size's peak RSS is its own."""
    command = [sys.executable, __file__, "--method", args.method, "--target", args.target, "--device", args.device,
               "--batch-size", str(args.batch_size), "--child", str(size)]
    command += ["--steps", str(args.steps)] if args.steps is not None else []
    command += ["--overhead"] if overhead else []
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the measurement of {size} images failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="latent", help="a registered method (default: latent)")
    parser.add_argument("--target", default="runner-up", choices=("runner-up", "next"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sizes", default=None, help="comma-separated data set sizes (default 1000,5000,20000)")
    parser.add_argument("--steps", type=int, default=None, help="the method's steps (default: its own)")
    parser.add_argument("--quick", action="store_true", help="sizes 128 and 256 with 5 steps, for a smoke run")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--overhead", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick and args.steps is None:
        args.steps = 5
    spec = cfnb.methods.get(args.method)
    args.options = {"steps": args.steps} if args.steps is not None and "steps" in spec.option_names else {}
    if args.child is not None:
        folder = Path(tempfile.mkdtemp(prefix="cfnb-bench-dataset-"))
        try:
            with contextlib.redirect_stdout(sys.stderr):  # the data loaders' messages
                result = measure(args, args.child, folder)
            print(json.dumps(result))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    sizes = [int(s) for s in (args.sizes or ("128,256" if args.quick else "1000,5000,20000")).split(",")]
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}"
          f"; method {args.method} {args.options or '(default options)'}, target {args.target}, batch "
          f"{args.batch_size}; one fresh process per size")
    print(f"\n{'images':>7}{'seconds':>9}{'cf/s':>8}{'peak RSS MiB':>14}{'writing s':>11}{'validity':>10}"
          f"{'oracle':>8}{'FID':>8}")
    for size in sizes:
        r = in_child(args, size)
        print(f"{size:>7}{r['seconds']:>9.1f}{size / r['seconds']:>8.1f}{r['peak']:>14.0f}{r['writing']:>11.2f}"
              f"{r['validity']:>10.3f}{r['oracle']:>8.3f}{r['fid']:>8.2f}")
    r = in_child(args, sizes[0], overhead=True)
    print(f"\noverhead at {sizes[0]} images: cfnb.explain alone {r['alone']:.1f} s, explain_dataset "
          f"{r['seconds']:.1f} s (writing shards {r['writing']:.2f} s): {100 * (r['seconds'] / r['alone'] - 1):+.1f}% "
          f"in all, {100 * r['writing'] / r['alone']:.1f}% writing (target <= 10%)")


if __name__ == "__main__":
    main()
