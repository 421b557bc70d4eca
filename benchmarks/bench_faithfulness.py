"""Are the counterfactuals real explanations? Validity, two independent judges, realism and size, measured so that
nothing can be tuned to the figures.

Protocol:

- MNIST: the 1,000 held-out digits (never trained on) are split by index into four disjoint sets of 250
  (``index % 4``). Set 0 is the *selection* set, the only one on which model files and defaults may be chosen; sets
  1-3 are the *report* sets, given as mean and worst. Each set is explained twice: every digit towards
  (label+1)%10 ("all targets"), and every digit of the pairs 3<->8, 4<->9, 5<->6 towards its partner ("pairs").
- Judges: ``mnist-oracle`` (LeNet, shipped) and a second judge that this benchmark trains itself (an MLP on the
  pixels, a different architecture again; it is never used to choose anything, and training it is seeded).
- Realism: FID over mnist-oracle's penultimate features against the real held-out digits of the other three sets,
  beside the same FID for the set's real digits (the floor), for the generator's reconstructions G(E(x)) and for
  the Mirror-CFE decoder's reconstructions D(F(x)). L1, the share of pixels changed by more than 0.1, COUT and the
  share of paths whose target probability never falls by more than 0.05 from frame to frame ("monotone")
  complete the rows.
- Faces: ``faces-editor`` flips each attribute of fresh faces; success as read by ``faces-classifier`` and by a face
  judge trained here (a GAP CNN half as wide, on faces of its own seed, never in any loss of the editor), and the
  cosine of the editor's change with the renderer's true change. The Smiling audit of ``faces-smiling-biased``
  through the editor is compared with the renderer's exact audit (Spearman of the eleven flip rates), and each
  twin's flagged factors are listed. Seed 4321 (the audit test's faces) selects; seeds 5001-5005 report, 500 faces each.

Run: .venv/bin/python benchmarks/bench_faithfulness.py [--section mnist|faces|all] [--methods latent,mirror,...]
     [--generator NAME_OR_FOLDER] [--decoder NAME_OR_FOLDER] [--editor NAME_OR_FOLDER] [--biased NAME_OR_FOLDER]
     [--sets 0 --option NAME=VALUE ...] [--quick] [--json FILE]

Choosing settings: ``--sets 0 --option kappa=12`` explains the selection set only, one line per sample.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from bench_quality import PAIRS, parse_options  # the sibling script (this folder is on sys.path when run)
from torch import nn

import cfnb
from cfnb.data import load_mnist, synth_faces
from cfnb.forward import forward_in_batches
from cfnb.metrics import oracle_validity
from cfnb.metrics.fid import domain_features, frechet_distance
from cfnb.metrics.transition import cout, path_monotonicity
from cfnb.models import load

CACHE = Path(__file__).resolve().parents[1] / "artifacts" / "faithfulness"
MNIST_SETS = 4
SELECTION_SET = 0
FACE_SELECTION_SEED = 4_321
FACE_REPORT_SEEDS = (5_001, 5_002, 5_003, 5_004, 5_005)
FACES_PER_SEED = 500
JUDGE_SEED = 7_007  # seeds the judges' training; no recipe uses it
FACE_JUDGE_DATA_SEED = 31_337
LOWER_IS_BETTER = {"FID", "L1", "changed"}
JUDGE_MIN_ACCURACY = 0.95  # below this on its own test faces, the face judge's verdict on an attribute says little


# ---------------------------------------------------------------------------------------------------------------
# judges trained by the benchmark


def _cached(name: str, build: Callable[[], nn.Module], train: Callable[[nn.Module], None]) -> nn.Module:
    """A judge from the benchmark's cache, or trained (seeded) and cached."""
    path = CACHE / f"{name}.pt"
    torch.manual_seed(JUDGE_SEED)
    model = build()
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        train(model)
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return model.eval()


def mnist_mlp_judge() -> nn.Module:
    """An MLP on the pixels (784-512-256-10, dropout), trained on the 4,000 embedded training digits."""
    from cfnb.training import train_supervised

    def build() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.3), nn.Linear(512, 256),
                             nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10))

    def train(model: nn.Module) -> None:
        digits = load_mnist("train", source="embedded")
        train_supervised(model, digits.images, digits.labels, epochs=40, lr=2e-3, max_shift=2, seed=JUDGE_SEED,
                         log=None, progress=False)

    return _cached("mnist-mlp-judge", build, train)


def face_judge() -> nn.Module:
    """A multi-label GAP CNN half as wide as faces-classifier (16-32-64-64), trained on 6,000 faces of its own seed
    with its own initialisation; it never enters any loss of the editor."""
    from cfnb.models.architectures import GAPClassifier
    from cfnb.training import train_supervised

    def build() -> nn.Module:
        return GAPClassifier(in_channels=3, num_classes=11, widths=(16, 32, 64, 64))

    def train(model: nn.Module) -> None:
        faces = synth_faces(6_000, seed=FACE_JUDGE_DATA_SEED)
        train_supervised(model, faces.images, faces.attributes, loss="bce", epochs=8, lr=3e-3, max_shift=2,
                         seed=JUDGE_SEED, log=None, progress=False)

    return _cached("face-judge", build, train)


# ---------------------------------------------------------------------------------------------------------------
# MNIST


def mnist_sets() -> list[dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """Per set: sample name -> (images, labels, targets)."""
    test = load_mnist("test")
    index = torch.arange(len(test))
    out = []
    for s in range(MNIST_SETS):
        images, labels = test.images[index % MNIST_SETS == s], test.labels[index % MNIST_SETS == s]
        in_pairs = torch.tensor([int(label) in PAIRS for label in labels])
        out.append({
            "all targets": (images, labels, (labels + 1) % 10),
            "pairs": (images[in_pairs], labels[in_pairs],
                      torch.tensor([PAIRS[int(label)] for label in labels[in_pairs]])),
        })
    return out


class Realism:
    """FID over mnist-oracle's penultimate features against the real digits of the other sets: all of them for
    "all targets", those of the pairs' classes for "pairs" (the classes the counterfactuals are drawn towards)."""

    def __init__(self, oracle: nn.Module, sets: Sequence[dict[str, Any]]):
        self.features = domain_features(oracle)
        self.network = self.features.name
        self.references: list[dict[str, torch.Tensor]] = []
        for s in range(len(sets)):
            self.references.append({
                sample: self._features(torch.cat([sets[o][sample][0] for o in range(len(sets)) if o != s]))
                for sample in sets[s]})

    @torch.no_grad()
    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return forward_in_batches(self.features, images, 500)

    def fid(self, images: torch.Tensor, set_index: int, sample: str = "all targets") -> float:
        return frechet_distance(self._features(images), self.references[set_index][sample])


def counterfactual_row(result: cfnb.Counterfactuals, classifier: nn.Module, judges: dict[str, nn.Module],
                       realism: Realism, set_index: int, sample: str) -> dict[str, float]:
    x, cf, target = result.original, result.counterfactual, result.target
    source = forward_in_batches(classifier, x, 500).argmax(1)
    row = {"validity": result.validity}
    for name, judge in judges.items():
        row[name] = oracle_validity(judge, cf, target)
    row["FID"] = realism.fid(cf, set_index, sample)
    row["L1"] = (cf - x).abs().mean().item()
    row["changed"] = ((cf - x).abs().amax(1) > 0.1).float().mean().item()
    row["COUT"] = cout(classifier, x, cf, source, target).mean().item()
    row["monotone"] = path_monotonicity(result.trajectory_probabilities, target)[1].float().mean().item()
    row["seconds"] = result.seconds
    return row


def reference_rows(sets, realism: Realism, generator: nn.Module, decoder: nn.Module,
                   classifier: nn.Module) -> dict[str, dict[str, list[float]]]:
    """Per sample, the FID per set of its real digits (the floor), of G(E(x)) and of D(F(x))."""
    from cfnb.methods.mirror import gap_parts

    features, _ = gap_parts(classifier)
    draws = {"real digits (floor)": lambda v: v, "generator G(E(x))": generator,
             "decoder D(F(x))": lambda v: decoder(features(v))}
    rows: dict[str, dict[str, list[float]]] = {}
    with torch.no_grad():
        for sample in sets[0]:
            for name, draw in draws.items():
                rows.setdefault(sample, {})[name] = [
                    realism.fid(forward_in_batches(draw, samples[sample][0], 500), s, sample)
                    for s, samples in enumerate(sets)]
    return rows


def summarise(values: Sequence[float], key: str) -> tuple[float, float, float]:
    """(selection, report mean, report worst) of per-set values."""
    report = [v for s, v in enumerate(values) if s != SELECTION_SET]
    worst = max(report) if key in LOWER_IS_BETTER else min(report)
    return values[SELECTION_SET], sum(report) / len(report), worst


def run_mnist(methods: Sequence[str], generator_name: str, decoder_name: str | None, quick: bool,
              only_sets: Sequence[int] | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    classifier, oracle = load("mnist-classifier"), load("mnist-oracle")
    generator = load(generator_name)
    decoder = load(decoder_name) if decoder_name else load("mnist-classifier-mirror-decoder")
    judges = {"oracle": oracle, "MLP judge": mnist_mlp_judge()}
    sets = mnist_sets()
    if quick:
        sets = [{k: tuple(t[:40] for t in v) for k, v in samples.items()} for samples in sets]
    realism = Realism(oracle, sets)
    print(f"\n## MNIST: mnist-classifier, generator {generator_name}, decoder {decoder_name or 'shipped'}")
    held_out = load_mnist("test")
    print(f"MLP judge accuracy on the held-out digits: "
          f"{oracle_validity(judges['MLP judge'], held_out.images, held_out.labels):.3f}; "
          f"FID network: {realism.network}")
    references = reference_rows(sets, realism, generator, decoder, classifier)
    print("\n| sample | reference | FID selection | FID report mean | FID report worst |")
    print("|---|---|---:|---:|---:|")
    for sample, named in references.items():
        for name, values in named.items():
            sel, mean, worst = summarise(values, "FID")
            print(f"| {sample} | {name} | {sel:.1f} | {mean:.1f} | {worst:.1f} |")
    helpers = {"latent": {"generator": generator}, "causal": {"generator": generator}, "mirror": {"decoder": decoder}}
    results: dict[str, Any] = {"references": references, "methods": {}}
    keys = ["validity", "oracle", "MLP judge", "FID", "L1", "changed", "COUT", "monotone"]
    for method in methods:
        per_sample: dict[str, list[dict[str, float]]] = {}
        for s, samples in enumerate(sets):
            if only_sets is not None and s not in only_sets:
                continue
            for sample, (images, _, target) in samples.items():
                result = cfnb.explain(classifier, images, target, method=method, progress=False,
                                      **helpers.get(method, {}), **(options or {}))
                per_sample.setdefault(sample, []).append(counterfactual_row(result, classifier, judges, realism, s,
                                                                            sample))
        results["methods"][method] = per_sample
        print(f"\n### {method}: selection set / report mean / report worst (sets of {len(sets[0]['all targets'][0])}"
              f" digits; pairs {', '.join(str(len(s['pairs'][0])) for s in sets)})")
        print("| sample | " + " | ".join(keys) + " |")
        print("|---|" + "---:|" * len(keys))
        if only_sets is not None:  # a tuning run: one line per set, no summary over report sets
            for sample, rows in per_sample.items():
                for s, row in zip(only_sets, rows):
                    print(f"| {sample} (set {s}) | " + " | ".join(f"{row[key]:.3f}" for key in keys) + " |")
            continue
        for sample, rows in per_sample.items():
            cells = []
            for key in keys:
                sel, mean, worst = summarise([row[key] for row in rows], key)
                digits = 1 if key == "FID" else 3 if key in ("L1", "COUT") else 2
                cells.append(f"{sel:.{digits}f} / {mean:.{digits}f} / {worst:.{digits}f}")
            print(f"| {sample} | " + " | ".join(cells) + " |")
    return results


# ---------------------------------------------------------------------------------------------------------------
# faces


def face_audits(faces, editor: nn.Module, reader: nn.Module, twins: dict[str, nn.Module]) -> dict[str, Any]:
    from scipy.stats import spearmanr

    from cfnb.audit import spurious
    from cfnb.audit.planted import renderer_factors

    names = list(faces.attribute_names)
    labels = faces.attribute("Smiling").long()
    common = dict(labels=labels, expected=["Smiling"], counterfactuals=0, progress=False, batch_size=100)
    out: dict[str, Any] = {}
    for kind, model in twins.items():
        truth = spurious(model, faces.images, renderer_factors(faces, names), **common)
        edited = spurious(model, faces.images, names, editor=editor, attribute_classifier=reader, **common)
        out[kind] = {
            "truth": {n: truth.scores[n].value for n in names},
            "editor": {n: edited.scores[n].value for n in names},
            "truth_flagged": truth.flagged, "editor_flagged": edited.flagged,
            "truth_blond_low": truth.scores["Blond_Hair"].low,
            "spearman": float(spearmanr([truth.scores[n].value for n in names],
                                        [edited.scores[n].value for n in names]).statistic),
        }
    return out


def run_faces(editor_name: str, biased_name: str, quick: bool) -> dict[str, Any]:
    from cfnb.training.editor import measure_editor

    editor, reader = load(editor_name), load("faces-classifier")
    judge = face_judge()
    test = synth_faces(1_000, seed=FACE_JUDGE_DATA_SEED + 1)
    judge_accuracy = ((forward_in_batches(judge, test.images, 500) > 0).float() == test.attributes).float().mean(0)
    twins = {"biased": load(biased_name), "unbiased": load("faces-smiling-unbiased")}
    seeds = (FACE_SELECTION_SEED, *FACE_REPORT_SEEDS[: 2 if quick else None])
    n = 100 if quick else FACES_PER_SEED
    print(f"\n## faces: editor {editor_name}, biased twin {biased_name}; {n} faces per seed, seed "
          f"{FACE_SELECTION_SEED} selects, {', '.join(map(str, seeds[1:]))} report")
    print("face judge accuracy per attribute (1,000 faces of its own test seed): "
          + ", ".join(f"{name} {value:.3f}" for name, value in zip(editor.attribute_names, judge_accuracy.tolist())))
    edits, audits = {}, {}
    for seed in seeds:
        edits[seed] = measure_editor(editor, reader, n=n, seed=seed, judges={"judge": judge})
        audits[seed] = face_audits(synth_faces(n, seed=seed), editor, reader, twins)
    names = list(editor.attribute_names)
    report_seeds = seeds[1:]
    print("\n| attribute | success (faces-classifier) | success (face judge) | change cosine |")
    print("|---|---:|---:|---:|")
    for k, name in enumerate(names):
        cells = []
        for key in ("success", "success_judge", "change_cosine"):
            if key == "success_judge" and judge_accuracy[k] < JUDGE_MIN_ACCURACY:
                cells.append(f"(judge reads it {judge_accuracy[k]:.2f})")
                continue
            values = [edits[s]["per_attribute"][name][key] for s in report_seeds]
            cells.append(f"{edits[FACE_SELECTION_SEED]['per_attribute'][name][key]:.3f} / "
                         f"{sum(values) / len(values):.3f} / {min(values):.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"(each cell: selection seed / report mean / report worst; the face judge only where it reads the "
          f"attribute with accuracy >= {JUDGE_MIN_ACCURACY})")
    smiles = [audits[s]["unbiased"]["editor"]["Smiling"] for s in report_seeds]
    print(f"Smiling edits that faces-smiling-unbiased (trained apart, never in the editor's loss) follows: selection "
          f"{audits[FACE_SELECTION_SEED]['unbiased']['editor']['Smiling']:.3f}, report mean "
          f"{sum(smiles) / len(smiles):.3f}, worst {min(smiles):.3f}")
    recon = [edits[s]["reconstruction_l1"] for s in report_seeds]
    print(f"reconstruction L1: report mean {sum(recon) / len(recon):.4f}, worst {max(recon):.4f}")
    rho = [audits[s]["biased"]["spearman"] for s in report_seeds]
    print(f"\nSmiling audit of the biased twin, editor against renderer: Spearman selection "
          f"{audits[FACE_SELECTION_SEED]['biased']['spearman']:.3f}; report mean {sum(rho) / len(rho):.3f}, "
          f"min {min(rho):.3f} ({', '.join(f'{r:.3f}' for r in rho)})")
    print("\n| seed | twin | renderer: Blond_Hair (low) | renderer flags | editor: Blond_Hair | editor flags |")
    print("|---|---|---:|---|---:|---|")
    for seed in seeds:
        for kind, audit in audits[seed].items():
            print(f"| {seed} | {kind} | {audit['truth']['Blond_Hair']:.3f} ({audit['truth_blond_low']:.3f}) | "
                  f"{', '.join(audit['truth_flagged'])} | {audit['editor']['Blond_Hair']:.3f} | "
                  f"{', '.join(audit['editor_flagged'])} |")
    return {"edits": edits, "audits": audits, "judge_accuracy": judge_accuracy.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=["mnist", "faces", "all"], default="all")
    parser.add_argument("--methods", default="latent,mirror,causal,pixel,pgd")
    parser.add_argument("--generator", default="mnist-vae", help="shipped name or fitted folder")
    parser.add_argument("--decoder", default=None, help="Mirror-CFE decoder (default: the shipped one)")
    parser.add_argument("--editor", default="faces-editor")
    parser.add_argument("--biased", default="faces-smiling-biased")
    parser.add_argument("--sets", default=None,
                        help="MNIST sets to explain, e.g. 0 (the selection set) when choosing settings")
    parser.add_argument("--option", action="append", default=[], help="NAME=VALUE for cfnb.explain (repeatable)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small samples, for a smoke run")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    out: dict[str, Any] = {}
    if args.section in ("mnist", "all"):
        only = [int(v) for v in args.sets.split(",")] if args.sets else None
        out["mnist"] = run_mnist(args.methods.split(","), args.generator, args.decoder, args.quick, only,
                                 parse_options(args.option))
    if args.section in ("faces", "all"):
        out["faces"] = run_faces(args.editor, args.biased, args.quick)
    print(f"\n({time.perf_counter() - start:.0f} s, {args.threads} thread(s))")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
