"""Throughput of cfnb.audit.spurious on the CPU it runs on, and its memory over a 10,000-image audit.

- colored_mnist (colored-mnist-biased, factor "colour"): images/second with interventions only, at 1,000 and 10,000
  images, and with 64 counterfactuals (the default) at 1,000 images;
- synth_faces (faces-smiling-biased through faces-editor + faces-classifier, all 11 attributes): images/second at
  250 and 1,000 faces, interventions only and with 32 counterfactuals;
- peak RSS added by the audit over 1,000 and 10,000 coloured digits (the data set itself is loaded before): flat,
  because results stream into running sums.

Run: .venv/bin/python benchmarks/bench_audit.py [--threads 1] [--quick]
"""
from __future__ import annotations

import argparse
import gc
import time

import torch


def reset_peak() -> None:
    try:  # Linux: reset the peak-RSS counter (VmHWM) of this process
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def rss_mb(field: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def colored_data(n: int):
    """``n`` coloured digits (the embedded train and test digits, repeated), colour independent of the class."""
    from cfnb.data.shortcuts import ColoredMNIST, colored_mnist

    parts = [colored_mnist("train", correlation=None), colored_mnist("test-shuffled")]
    images = torch.cat([p.images for p in parts])
    labels = torch.cat([p.labels for p in parts])
    spurious = torch.cat([p.spurious for p in parts])
    repeat = -(-n // len(images))
    return ColoredMNIST(images.repeat(repeat, 1, 1, 1)[:n], labels.repeat(repeat)[:n], spurious.repeat(repeat)[:n],
                        None, 0, source="colored MNIST, repeated for the benchmark")


def audit_colored(data, limit: int, counterfactuals: int, generator, model):
    from cfnb.audit import spurious
    from cfnb.audit.planted import shortcut_factor

    return spurious(model, data.images, [shortcut_factor(data)], labels=data.labels, generator=generator, limit=limit,
                    counterfactuals=counterfactuals, progress=False, min_group=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from cfnb.audit import spurious
    from cfnb.audit.planted import shortcut_generator
    from cfnb.data import synth_faces
    from cfnb.models import load

    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU")
    big = 2_000 if args.quick else 10_000
    data = colored_data(big)
    model = load("colored-mnist-biased")
    generator = shortcut_generator(data)
    audit_colored(data, 64, 0, generator, model)  # warm-up (imports, first calls)
    print("\n## colored_mnist (colored-mnist-biased, factor colour, batch 256)")
    print("| images | counterfactuals | seconds | images/s |")
    print("|---:|---:|---:|---:|")
    for limit, cfs in ((1_000, 0), (big, 0), (1_000, 64)):
        start = time.perf_counter()
        report = audit_colored(data, limit, cfs, generator, model)
        seconds = time.perf_counter() - start
        print(f"| {limit:,} | {cfs} | {seconds:.1f} | {limit / seconds:,.0f} |")
    print(f"(colour reliance score on the last run: {report.scores['colour']:.3f})")

    print("\n## synth_faces (faces-smiling-biased, faces-editor + faces-classifier, 11 attributes, batch 256)")
    editor, reader, smiling = load("faces-editor"), load("faces-classifier"), load("faces-smiling-biased")
    faces = synth_faces(1_000 if not args.quick else 250, seed=4321)
    labels = faces.attribute("Smiling").long()
    spurious(smiling, faces.images, ["Smiling"], editor=editor, attribute_classifier=reader, limit=16,
             counterfactuals=0, progress=False)  # warm-up
    print("| faces | counterfactuals | seconds | images/s |")
    print("|---:|---:|---:|---:|")
    for limit, cfs in ((250, 0), (len(faces), 0), (250, 32)):
        start = time.perf_counter()
        spurious(smiling, faces.images, list(editor.attribute_names), editor=editor, attribute_classifier=reader,
                 labels=labels, limit=limit, counterfactuals=cfs, progress=False)
        seconds = time.perf_counter() - start
        print(f"| {limit:,} | {cfs} | {seconds:.1f} | {limit / seconds:,.1f} |")

    print("\n## memory: peak RSS added by a colored_mnist audit (interventions + 64 counterfactuals)")
    print("| images | RSS before (MB) | peak during (MB) | added (MB) |")
    print("|---:|---:|---:|---:|")
    for limit in (1_000, big):
        gc.collect()
        reset_peak()
        before = rss_mb("VmRSS")
        audit_colored(data, limit, 64, generator, model)
        peak = rss_mb("VmHWM")
        print(f"| {limit:,} | {before:.0f} | {peak:.0f} | {peak - before:.0f} |")


if __name__ == "__main__":
    main()
