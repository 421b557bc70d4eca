"""``cfnb.explain_dataset`` and ``cfnb explain``: whole data sets to disk, resumable, sharded over processes.

In-process tests use the tiny seeded models; the command-line tests (kill -9 and resume, torchrun) run a small
GAPClassifier model folder built here on MNIST test digits, one thread per process.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_models import TinyGAP, TinyGenerator, intensity_bands, trained_tiny_classifier

import cfnb
from cfnb.cli import main
from cfnb.data import image_source
from cfnb.forward import probabilities
from cfnb.metrics import domain_features, frechet_distance, mnac, oracle_agrees, proximity
from cfnb.runs import RunMismatchError, explain_dataset, load_run

REPO = Path(__file__).resolve().parents[1]
STEPS = 15


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread in this process during each test (restored afterwards), as in the command-line runs: the
    cores are shared with those subprocesses."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def models(tiny_classifier):
    return {"classifier": tiny_classifier, "generator": TinyGenerator(), "oracle": trained_tiny_classifier(seed=1)}


@pytest.fixture
def bands():
    return intensity_bands(45, seed=3)


def run(models, images, out, labels=None, **settings):
    """A small latent run of the tiny models (what most tests explain)."""
    arguments = {"batch_size": 16, "seed": 4, "progress": False, "steps": STEPS, "oracle": models["oracle"],
                 **settings}
    return explain_dataset(models["classifier"], images, "runner-up", "latent", out=out, labels=labels,
                           generator=models["generator"], **arguments)


def direct(models, images, batch_size=16, seed=4):
    """The same batches explained with cfnb.explain: the counterfactuals and their targets, batch after batch."""
    results = []
    for k, start in enumerate(range(0, len(images), batch_size)):
        batch = images[start:start + batch_size]
        targets = probabilities(models["classifier"].eval(), batch).topk(2, dim=1).indices[:, 1]
        results.append(cfnb.explain(models["classifier"], batch, targets, "latent", generator=models["generator"],
                                    seed=seed + k, frames=2, progress=False, steps=STEPS))
    return results


def indices_once(rows, n):
    assert [row["index"] for row in rows] == list(range(n))


# --- (a) a run equals cfnb.explain on the same batches -----------------------------------------------------------
def test_run_matches_explain_on_the_same_batches(models, bands, tmp_path):
    images, labels = bands
    summary = run(models, images, tmp_path / "run", labels=labels)
    results = direct(models, images)
    counterfactuals = torch.cat([r.counterfactual for r in results])
    targets = torch.cat([r.target for r in results])
    valid = torch.cat([r.valid for r in results])
    features = domain_features(models["oracle"])

    assert summary.n == 45 and summary.batches == 3 and summary.computed == 3
    assert summary.validity == pytest.approx(valid.float().mean().item())
    assert summary.oracle_validity == pytest.approx(
        oracle_agrees(models["oracle"], counterfactuals, targets).float().mean().item())
    assert summary.mean_l1 == pytest.approx(proximity(images, counterfactuals).mean().item(), rel=1e-5)
    fid = frechet_distance(features(counterfactuals).detach(), features(images).detach())
    assert summary.fid == pytest.approx(fid, rel=1e-6, abs=1e-9)
    assert summary.fid_network == features.name
    assert summary.mnac is None

    loaded = load_run(tmp_path / "run")
    indices_once(loaded.rows, 45)
    assert [row["label"] for row in loaded.rows] == labels.tolist()
    assert [row["target"] for row in loaded.rows] == targets.tolist()
    assert [row["valid"] for row in loaded.rows] == valid.tolist()
    assert torch.equal(loaded.counterfactuals(range(45)), counterfactuals)
    assert torch.equal(loaded.counterfactual(17), counterfactuals[17])
    assert loaded.summary == summary
    assert json.loads(summary.summary_path.read_text())["validity"] == summary.validity
    with pytest.raises(IndexError):
        loaded.counterfactual(45)


def test_mnac_on_data_with_attributes(models, bands, tmp_path):
    images, _ = bands
    attributes = (torch.rand(len(images), 4, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    reader = TinyGAP(num_classes=4, seed=5).eval()
    source = image_source(images, attributes=attributes)
    summary = run(models, source, tmp_path / "run", attribute_classifier=reader, oracle=None)
    counterfactuals = torch.cat([r.counterfactual for r in direct(models, images)])
    changed = mnac(reader, images, counterfactuals)
    assert summary.mnac == pytest.approx(changed.float().mean().item())
    assert [row["mnac"] for row in load_run(tmp_path / "run").rows] == changed.tolist()
    assert summary.oracle_validity is None and summary.fid_network == "TinyGAP.features+GAP"


def test_a_finished_run_is_found_not_redone(models, bands, tmp_path):
    images, labels = bands
    first = run(models, images, tmp_path / "run", labels=labels)
    again = run(models, images, tmp_path / "run", labels=labels)
    assert again.computed == 0 and again == first


# --- (d) a partially written shard is redone ----------------------------------------------------------------------
def test_a_partial_shard_is_redone(models, bands, tmp_path):
    images, labels = bands
    out = tmp_path / "run"
    run(models, images, out, labels=labels)
    before = load_run(out)
    rows, pictures = before.rows, before.counterfactuals(range(45))
    shards = out / "shards"
    (shards / "shard-000001.csv").unlink()  # killed between its tensor file and its rows file
    (shards / "shard-000001.safetensors").write_bytes(b"half a tensor file")
    (shards / "shard-000002.csv.tmp").write_text("index,source\n3,")  # killed while writing
    (out / "rows.csv").unlink()
    (out / "summary.json").unlink()
    with pytest.raises(FileNotFoundError, match="unfinished"):
        load_run(out)

    summary = run(models, images, out, labels=labels)
    assert summary.computed == 1
    assert not list(shards.glob("*.tmp"))
    after = load_run(out)
    assert after.rows == rows
    assert torch.equal(after.counterfactuals(range(45)), pictures)


# --- (e) another configuration in the folder ----------------------------------------------------------------------
def test_a_different_configuration_is_refused_unless_overwrite(models, bands, tmp_path):
    images, labels = bands
    out = tmp_path / "run"
    run(models, images, out, labels=labels)
    with pytest.raises(RunMismatchError, match=r"different configuration \(differs in: seed\).*overwrite=True"):
        run(models, images, out, labels=labels, seed=5)
    with pytest.raises(RunMismatchError, match="options"):
        run(models, images, out, labels=labels, steps=STEPS + 1)
    summary = run(models, images, out, labels=labels, seed=5, overwrite=True)
    assert summary.computed == 3
    assert json.loads((out / "config.json").read_text())["config"]["seed"] == 5
    indices_once(load_run(out).rows, 45)


def test_a_folder_of_other_files_is_refused(models, bands, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunMismatchError, match="not a cfnb run"):
        run(models, bands[0], tmp_path, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --- (f) clear errors ---------------------------------------------------------------------------------------------
def test_bad_input_gets_a_clear_error(models, bands, tmp_path):
    images, labels = bands
    with pytest.raises(ValueError, match="empty"):
        run(models, images[:0], tmp_path / "a")
    five = image_source(images, labels=labels, class_names=list("abcde"))
    with pytest.raises(ValueError, match="3 outputs but the data has 5 classes"):
        run(models, five, tmp_path / "b")
    with pytest.raises(ValueError, match="unknown target 'second'.*runner-up"):
        explain_dataset(models["classifier"], images, "second", "pixel", out=tmp_path / "c", progress=False)
    with pytest.raises(TypeError, match="no option"):
        run(models, images, tmp_path / "d", stepz=3)
    with pytest.raises(TypeError, match="needs a generator"):
        explain_dataset(models["classifier"], images, 0, "latent", out=tmp_path / "e", progress=False)
    assert not any((tmp_path / name).exists() for name in "abcde")  # nothing written before the checks


def test_the_command_refuses_bad_configs(tmp_path, capsys):
    config = tmp_path / "c.json"
    cases = [({"classifier": "mnist-classifier", "data": "x", "target": 0, "colour": 1}, "unknown key(s) ['colour']"),
             ({"classifier": "mnist-classifier", "data": "x"}, "missing 'target'"),
             ({"classifier": "mnist-classifier", "data": "x", "target": 0, "batch_size": 0}, "'batch_size' must be"),
             ({"classifier": "mnist-classifier", "data": {"name": "cifar"}, "target": 0}, "'data' must be"),
             ({"classifier": "no-such-model", "data": "x", "target": 0}, "classifier: no shipped model"),
             ({"classifier": "mnist-classifier", "data": {"name": "mnist"}, "target": "sideways", "method": "pixel"},
              "unknown target 'sideways'")]
    for body, message in cases:
        config.write_text(json.dumps(body))
        assert main(["explain", str(config), "--out", str(tmp_path / "out")]) == 2
        assert message in capsys.readouterr().err
    toml = tmp_path / "c.toml"
    toml.write_text('classifier = "mnist-classifier"\ndata = "x"\ntarget = 0\nseed = -1\n')
    assert main(["explain", str(toml)]) == 2
    assert "'seed' must be an int >= 0, got -1" in capsys.readouterr().err


# --- (g) memory stays flat ----------------------------------------------------------------------------------------
def resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident set size from /proc")
def test_memory_stays_flat_however_many_images(tmp_path):
    """1,280 colour images of 64x64 (61 MiB of counterfactuals, 80 batches): from the tenth batch (by when the first
    calls' one-off allocations are done) to the last, the resident size grows by less than 16 MiB, so no batch's
    tensors are kept (keeping every shard grows it by about 100 MiB)."""
    classifier = TinyGAP(in_channels=3, seed=2).eval()
    images = torch.rand(1280, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    seen: list[float] = []
    summary = explain_dataset(classifier, images, "next", "pixel", out=tmp_path / "run", batch_size=16, steps=2,
                              progress=lambda done, total: seen.append(resident_mb()))
    assert summary.n == 1280 and len(seen) == 81
    assert max(seen[10:]) - seen[10] < 16, f"resident MiB grew from {seen[10]:.0f} to {max(seen[10:]):.0f}"


# --- the command line: kill -9 and resume, torchrun ----------------------------------------------------------------
def digits_classifier(folder: Path) -> Path:
    """A small GAPClassifier model folder on MNIST: random convolutions, batch norm statistics of 300 test digits,
    and a linear head fitted to their pooled features (a second to build)."""
    from safetensors.torch import save_file

    from cfnb.data import load_mnist
    from cfnb.models.architectures import GAPClassifier
    from cfnb.models.registry import ModelCard, sha256_of, write_folder_card

    torch.manual_seed(0)
    model = GAPClassifier(1, 10, (4, 8))
    digits = load_mnist("test", source="embedded")
    order = torch.randperm(len(digits.images), generator=torch.Generator().manual_seed(0))[:300]
    images, labels = digits.images[order], digits.labels[order]
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    with torch.no_grad():
        model.train()
        model.features(images)
        model.eval()
        pooled = model.features(images).mean((2, 3))
    optimiser = torch.optim.Adam(model.head.parameters(), lr=0.1)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(model.head(pooled), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    folder.mkdir(parents=True)
    save_file(model.state_dict(), str(folder / "weights.safetensors"))
    card = ModelCard("tiny-digits", "GAPClassifier", {"in_channels": 1, "num_classes": 10, "widths": [4, 8]},
                     "MNIST test digits (embedded)", {}, sha256_of(folder / "weights.safetensors"),
                     "weights.safetensors", {"class_names": [str(d) for d in range(10)]})
    write_folder_card(card, folder)
    return folder


@pytest.fixture(scope="module")
def command_run(tmp_path_factory):
    """A config for ``cfnb explain`` (600 digits in 30 shards) and its uninterrupted run's rows."""
    root = tmp_path_factory.mktemp("command")
    digits_classifier(root / "tiny-digits")
    config = root / "digits.json"
    config.write_text(json.dumps({
        "classifier": "tiny-digits", "data": {"name": "mnist", "split": "test"}, "target": "next",
        "method": "pixel", "options": {"steps": 8, "lr": 0.1}, "batch_size": 20, "limit": 600, "seed": 3,
        "output": "reference", "progress": False}))
    command(["-m", "cfnb", "explain", str(config)])
    reference = load_run(root / "reference")
    assert reference.summary.validity > 0.5
    return config, reference.rows


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def command(arguments: list[str]) -> str:
    """Run ``python ARGUMENTS`` to completion; its standard output."""
    done = subprocess.run([sys.executable, *arguments], cwd=REPO, env=environment(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_kill_9_then_run_again_gives_the_uninterrupted_rows(command_run, tmp_path):
    config, reference = command_run
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "cfnb", "explain", str(config), "--out", str(out)], cwd=REPO,
                               env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("shards/*.csv")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists(), "the run finished before it was killed: give it more batches"
    assert list(out.glob("shards/*.csv"))

    command(["-m", "cfnb", "explain", str(config), "--out", str(out)])
    rows = load_run(out).rows
    indices_once(rows, 600)
    assert rows == reference  # every column, floats to the last bit


def free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return int(handle.getsockname()[1])


def test_torchrun_on_two_processes_gives_the_rows_of_one(command_run, tmp_path):
    config, reference = command_run
    out = tmp_path / "two"
    printed = command(["-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
                       "-m", "cfnb", "explain", str(config), "--out", str(out)])
    assert printed.count("600 images, 30 shards") == 1  # rank 0 alone reports
    rows = load_run(out).rows
    indices_once(rows, 600)
    assert rows == reference  # every column, floats to the last bit
