"""Speed of cfnb.explain per method on the shipped MNIST models: counterfactuals per second at batch 1, 16 and 256,
median steps, validity, L1, peak memory; batched-vs-loop ratio; library overhead against a bare PyTorch loop.

Run: .venv/bin/python benchmarks/bench_explain.py [--device cpu|cuda] [--quick]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

import cfnb
from cfnb.data import load_mnist
from cfnb.models import companion, load
from cfnb.models.architectures import MIRROR_DECODERS


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:  # Linux: reset the peak-RSS counter (VmHWM) of this process
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device, fn):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def warm_up(classifier, x, target, method, models) -> None:
    """One cheap call with the same batch shape first: the CPU's convolution kernels are prepared per input shape,
    and that first-call cost is not what a user pays on every explanation."""
    cheap = {"steps": 2} if method != "mirror" else {}
    cfnb.explain(classifier, x, target, method=method, frames=2, progress=False, **models, **cheap)


def best_of_alternated(device, first, second, rounds: int = 2) -> tuple[float, float]:
    """Seconds of ``first`` and of ``second``, each the fastest of ``rounds`` runs taken in turn (a, b, a, b): a
    shared machine's speed can drift within minutes, and a ratio of two runs taken one after the other moves with it."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, kept in zip((first, second), times):
            kept.append(timed(device, fn)[1])
    return min(times[0]), min(times[1])


def median_time(device, fn, repeats: int) -> float:
    fn()
    return statistics.median(timed(device, fn)[1] for _ in range(repeats))


def bare_latent_loop(classifier, vae, x, target, steps, lr, lam, prior):
    """The same arithmetic as method='latent' (Adam on z, CE + L1 + prior), written as a plain loop."""
    with torch.no_grad():
        z0 = vae.encode(x)
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        image = vae.decode(z)
        logits = classifier(image)
        loss = (lam * F.cross_entropy(logits, target, reduction="none") + (x - image).abs().flatten(1).mean(1)
                + prior * z.pow(2).mean(1)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return vae.decode(z)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="smaller batches, for a smoke run")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
    data = load_mnist("test")
    classifier, vae = load("mnist-classifier").to(device), load("mnist-vae").to(device)
    decoder = load(companion("mnist-classifier", MIRROR_DECODERS)).to(device)
    helpers = {"latent": {"generator": vae}, "causal": {"generator": vae}, "mirror": {"decoder": decoder},
               "pixel": {}, "pgd": {}}
    batches = (1, 16, 64) if args.quick else (1, 16, 256)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    images, labels = data.images[order].to(device), data.labels[order].to(device)
    print()
    print(f"{'method':<8}{'batch':>6}{'cf/s':>10}{'s/cf':>9}"
          f"{'median steps':>14}{'validity':>10}{'L1':>8}{'peak MB':>9}")
    throughput = {}
    for method, models in helpers.items():
        for batch in batches:
            x, target = images[:batch], (labels[:batch] + 1) % 10
            warm_up(classifier, x, target, method, models)
            reset_peak()
            result, seconds = timed(device, lambda: cfnb.explain(classifier, x, target, method=method, progress=False,
                                                                   **models))
            throughput[method, batch] = batch / seconds
            l1 = (result.counterfactual - result.original).abs().mean().item()
            print(f"{method:<8}{batch:>6}{batch / seconds:>10.1f}{seconds / batch:>9.3f}"
                  f"{statistics.median(result.steps_used.tolist()):>14.0f}{result.validity:>10.2f}{l1:>8.3f}"
                  f"{peak_mb(device):>9.0f}")
    print()
    loop_n = batches[-1] if device.type == "cuda" else 32
    for method in ("latent", "mirror"):
        x, target = images[:loop_n], (labels[:loop_n] + 1) % 10
        big, big_target = images[:batches[-1]], (labels[:batches[-1]] + 1) % 10
        batched_seconds, loop_seconds = best_of_alternated(
            device,
            lambda: cfnb.explain(classifier, big, big_target, method=method, progress=False, **helpers[method]),
            lambda: [cfnb.explain(classifier, x[i:i + 1], target[i:i + 1], method=method, progress=False,
                                  **helpers[method])
                     for i in range(loop_n)])
        batched_rate, loop_rate = batches[-1] / batched_seconds, loop_n / loop_seconds
        print(f"{method}: batched {batches[-1]} = {batched_rate:.1f} cf/s, per-image loop ({loop_n} images) = "
              f"{loop_rate:.1f} cf/s (best of 2 alternated runs each), ratio {batched_rate / loop_rate:.1f}x")
    one = images[:1]
    mirror_seconds = median_time(device, lambda: cfnb.explain(classifier, one, (labels[:1] + 1) % 10,
                                                              method="mirror", decoder=decoder, frames=32,
                                                              progress=False), 7)
    print(f"mirror: one 32-frame transition in {mirror_seconds * 1000:.0f} ms (median of 7)")
    latent_one = median_time(device, lambda: cfnb.explain(classifier, one, (labels[:1] + 1) % 10, method="latent",
                                                          generator=vae, steps=100, progress=False), 5)
    print(f"latent: one counterfactual (<= 100 steps) in {latent_one:.3f} s (median of 5)")
    n, steps = batches[-1], 100
    x, target = images[:n], (labels[:n] + 1) % 10
    settings = dict(steps=steps, lr=0.1, lam=0.05, prior=0.01)  # no cycle term, no shifts in the bare loop: 0 below
    for model in (classifier, vae):
        model.requires_grad_(False)
    bare, library = best_of_alternated(
        device,
        lambda: bare_latent_loop(classifier, vae, x, target, **settings),
        lambda: cfnb.explain(classifier, x, target, method="latent", generator=vae, kappa=float("inf"), frames=2,
                             cycle=0.0, shift=0, progress=False, **settings))
    print(f"overhead: {steps} latent steps on {n} images, bare loop {bare:.2f} s, cfnb.explain {library:.2f} s "
          f"(faster of 2 alternated runs each), library/bare = {library / bare:.2f}")


if __name__ == "__main__":
    main()
