"""cfnb.training.fit_*: helper models for your own images, checkpointed and resumable to the same weights, saved with
a card that cfnb.models.load reads; and `cfnb fit` on an image folder and on a fake CelebA."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import intensity_bands

import cfnb
from cfnb.data import synth_faces
from cfnb.models import ConvVAE, load
from cfnb.training import DecoderLossWeights, fit_classifier, fit_editor, fit_generator, fit_mirror_decoder


@contextlib.contextmanager
def one_thread():
    """Bit-identical reruns need one thread (reduction order in the convolutions' backward passes)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Interrupt(Exception):
    pass


def stop_at(step: int):
    """A progress callback that kills the run once ``step`` steps are done (as a crash would)."""
    def progress(done: int, total: int) -> None:
        if done == step:
            raise Interrupt
    return progress


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture
def bands():
    images, labels = intensity_bands(48, seed=5, side=16)
    return images.expand(-1, 3, -1, -1).contiguous(), labels


def small_vae(side: int = 16) -> ConvVAE:
    torch.manual_seed(11)
    return ConvVAE(latent_dim=4, channels=1, hidden=16, image_size=side).eval()


@pytest.mark.parametrize("kind", ["classifier", "generator", "vae-gan", "decoder", "adversarial decoder",
                                  "generator decoder"])
def test_training_resumes_to_the_weights_of_an_uninterrupted_run(kind, bands, tmp_path, tiny_classifier):
    images, labels = bands
    common = {"seed": 4, "validation": 0.25, "batch_size": 8, "log": None, "checkpoint_every": 3, "device": "cpu"}

    def train(out, **extra):
        if kind == "classifier":
            return fit_classifier(images, labels, widths=(4, 8), epochs=2, out=out, **common, **extra)
        if kind in ("generator", "vae-gan"):
            return fit_generator(images, latent_dim=4, hidden=16, epochs=2, out=out,
                                 adversarial_epochs=1 if kind == "vae-gan" else 0, **common, **extra)
        # the adversarial decoder's critic trains from the first step: a checkpoint without it resumes elsewhere
        losses: dict = {"weights": DecoderLossWeights(adversarial=0.5)} if kind == "adversarial decoder" else {}
        if kind == "generator decoder":
            losses["generator"] = small_vae()
        return fit_mirror_decoder(tiny_classifier, images[:, :1], epochs=2, width=8, out=out, **common, **losses,
                                  **extra)

    with one_thread():
        whole = train(tmp_path / "whole", progress=False)
        with pytest.raises(Interrupt):
            train(tmp_path / "resumed", progress=stop_at(7))  # 2 epochs of 5 steps; the last checkpoint: step 6
        saved = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["position"]
        assert (saved["epoch"], saved["batch"]) == (1, 1)  # mid-epoch: resuming must restore the epoch's order
        with pytest.raises(FileExistsError, match="resume=True"):
            train(tmp_path / "resumed", progress=False)
        resumed = train(tmp_path / "resumed", progress=False, resume=True)
    assert same_weights(whole.model, resumed.model)
    assert whole.card.quality == resumed.card.quality and "held_out_images" in whole.card.quality


def test_a_generator_stopped_in_its_vae_gan_stage_resumes_there(bands, tmp_path):
    """fit_generator(adversarial_epochs=N) checkpoints both stages: a run killed in the VAE-GAN stage resumes there
    (critic and its optimiser restored) and ends with the weights of an uninterrupted run."""
    images, _ = bands
    common = {"latent_dim": 4, "hidden": 16, "epochs": 2, "adversarial_epochs": 2, "seed": 4, "validation": 0.25,
              "batch_size": 8, "log": None, "checkpoint_every": 3, "device": "cpu"}
    calls = []

    def stop_in_second_stage(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 10 + 7:  # 10 VAE steps, then 7 of the VAE-GAN's 10
            raise Interrupt

    with one_thread():
        whole = fit_generator(images, out=tmp_path / "whole", progress=False, **common)
        with pytest.raises(Interrupt):
            fit_generator(images, out=tmp_path / "resumed", progress=stop_in_second_stage, **common)
        saved = torch.load(tmp_path / "resumed" / "vae-gan-checkpoint.pt", weights_only=False)
        assert (saved["position"]["epoch"], saved["position"]["batch"]) == (1, 1)
        assert {"critic", "critic_optimiser"} <= set(saved["state"])
        resumed = fit_generator(images, out=tmp_path / "resumed", progress=False, resume=True, **common)
    assert same_weights(whole.model, resumed.model)
    assert not same_weights(whole.model, fit_generator(images, progress=False,
                                                       **{**common, "adversarial_epochs": 0}).model)


def test_editor_training_resumes_to_the_same_weights(tmp_path):
    faces = synth_faces(40, seed=3, size=16)
    reader = fit_classifier(faces, widths=(4, 8), epochs=1, validation=0, log=None, progress=False, device="cpu").model
    common = {"attribute_classifier": reader, "steps": 6, "width": 4, "batch_size": 8, "log": None,
              "checkpoint_every": 2, "validation": 0.25, "device": "cpu"}
    with one_thread():
        whole = fit_editor(faces, out=tmp_path / "whole", progress=False, **common)
        with pytest.raises(Interrupt):
            fit_editor(faces, out=tmp_path / "resumed", progress=stop_at(5), **common)
        resumed = fit_editor(faces, out=tmp_path / "resumed", progress=False, resume=True, **common)
    assert same_weights(whole.model, resumed.model)
    assert set(whole.card.quality["flip_success"]) == set(faces.attribute_names)


def test_saved_models_load_by_path_with_their_cards(bands, tmp_path):
    images, labels = bands
    fitted = fit_classifier(images, labels, class_names=["dark", "mid", "bright"], widths=(4, 8), epochs=1,
                            out=tmp_path / "bands", log=None, progress=False, device="cpu")
    card = json.loads((tmp_path / "bands" / "card.json").read_text())
    assert card["architecture"] == "GAPClassifier" and card["extra"]["class_names"] == ["dark", "mid", "bright"]
    assert 0 <= card["quality"]["held_out_accuracy"] <= 1 and card["quality"]["held_out_images"] == 5
    model = load(tmp_path / "bands")
    assert model.class_names == ["dark", "mid", "bright"] and same_weights(model, fitted.model)
    result = cfnb.explain(model, images[:2], "bright", method="pgd", steps=2, progress=False)
    assert result.class_names == ["dark", "mid", "bright"]
    (tmp_path / "bands" / "model.safetensors").write_bytes(b"changed")
    with pytest.raises(RuntimeError, match="SHA-256"):
        load(tmp_path / "bands")


def test_fit_sizes_its_models_to_the_data():
    faces = synth_faces(24, seed=8, size=48)
    generator = fit_generator(faces, epochs=1, latent_dim=4, hidden=16, log=None, progress=False, device="cpu")
    assert generator.model.decode(torch.zeros(1, 4)).shape == (1, 3, 48, 48)
    assert generator.card.kwargs["image_size"] == 48 and generator.card.kwargs["channels"] == 3
    # 22 px: the classifier's 6x6 map is not 22 / 2^k, so the decoder ends by resizing to the images' size
    images = torch.rand(16, 1, 22, 22)
    classifier = fit_classifier(images, torch.arange(16) % 2, widths=(4, 8, 8), epochs=1, validation=0, log=None,
                                progress=False, device="cpu").model
    decoder = fit_mirror_decoder(classifier, images, epochs=1, width=8, validation=0, log=None, progress=False,
                                 device="cpu")
    assert decoder.card.kwargs["image_size"] == [22, 22]
    assert decoder.model(classifier.features(images[:2])).shape == (2, 1, 22, 22)


def test_a_decoder_drawing_through_a_generator_trains_only_its_mapper(bands, tmp_path, tiny_classifier):
    images = bands[0][:, :1]
    vae = small_vae()
    fitted = fit_mirror_decoder(tiny_classifier, images, epochs=2, validation=0.25, batch_size=8, generator=vae,
                                out=tmp_path / "decoder", log=None, progress=False, device="cpu")
    decoder = fitted.model
    assert fitted.card.architecture == "GeneratorFeatureDecoder"
    # a frozen copy: weights and batch-norm statistics as the generator's, though the decoder was in train mode
    assert same_weights(decoder.drawer, vae.decoder)
    maps = tiny_classifier.features(images[:4])
    assert torch.allclose(decoder(maps), vae.decode(decoder.code(maps)))
    loaded = load(tmp_path / "decoder")
    assert same_weights(loaded, decoder)
    result = cfnb.explain(tiny_classifier, images[:4], 2, method="mirror", decoder=loaded, progress=False)
    assert result.counterfactual.shape == (4, 1, 16, 16)
    with pytest.raises(TypeError, match="takes a cfnb.models.ConvVAE"):
        fit_mirror_decoder(tiny_classifier, images, epochs=1, generator=torch.nn.Identity(), log=None,
                           progress=False, device="cpu")
    with pytest.raises(ValueError, match="train a ConvVAE on these images"):
        fit_mirror_decoder(tiny_classifier, images, epochs=1, generator=small_vae(32), log=None, progress=False,
                           device="cpu")


def test_mixed_precision_trains(bands):
    images, labels = bands
    fitted = fit_classifier(images, labels, widths=(4, 8), epochs=1, amp=True, validation=0.25, log=None,
                            progress=False, device="cpu")
    assert next(fitted.model.parameters()).dtype == torch.float32  # weights stay float32; the passes are bfloat16
    assert 0 <= fitted.card.quality["held_out_accuracy"] <= 1


def test_fit_refuses_what_it_cannot_train(bands, tmp_path):
    images, labels = bands
    with pytest.raises(ValueError, match="needs labels or attributes"):
        fit_classifier(images, log=None, progress=False)
    with pytest.raises(ValueError, match="resume=True needs out=FOLDER"):
        fit_classifier(images, labels, resume=True, log=None, progress=False)
    with pytest.raises(ValueError, match="labels out of range"):
        fit_classifier(images, labels + 1, class_names=["a", "b", "c"], log=None, progress=False)
    with pytest.raises(ValueError, match="square images"):
        fit_generator(torch.rand(8, 1, 16, 24), log=None, progress=False)
    with pytest.raises(ValueError, match="needs images with attributes"):
        fit_editor(images, attribute_classifier=torch.nn.Identity(), log=None, progress=False)
    with pytest.raises(ValueError, match="architecture must be"):
        fit_classifier(images, labels, architecture="vit", log=None, progress=False)


def write_image_folder(root: Path, per_class: int = 12, side: int = 32) -> Path:
    """Three classes of 3-channel images: dark, mid-grey and bright noise."""
    rng = np.random.default_rng(1)
    for k, name in enumerate(("dark", "mid", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = (k * 85 + rng.integers(0, 85, (side, side, 3))).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def cfnb_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cfnb", *args], capture_output=True, text=True, timeout=300)


def explain_with_config(folder: Path, config: dict) -> list[dict]:
    """`cfnb explain CONFIG` on ``config`` (written into ``folder``); the run's rows."""
    from cfnb.runs import load_run

    path = folder / "explain.json"
    path.write_text(json.dumps({"batch_size": 8, "progress": False, "output": "run", **config}))
    run = cfnb_command("explain", str(path))
    assert run.returncode == 0, run.stderr[-2000:]
    return load_run(folder / "run").rows


def test_cfnb_fit_on_an_image_folder_end_to_end(tmp_path):
    folder = write_image_folder(tmp_path / "shades")
    runs = {kind: cfnb_command("fit", kind, "--data", str(folder), "--out", str(tmp_path / kind), "--epochs", "1",
                                "--batch-size", "8", "--no-progress", "--device", "cpu",
                                *(["--classifier", str(tmp_path / "classifier")] if kind == "decoder" else []))
            for kind in ("classifier", "generator", "decoder")}
    for kind, run in runs.items():
        assert run.returncode == 0, (kind, run.stderr[-2000:])
        assert "wrote" in run.stdout and (tmp_path / kind / "card.json").is_file()
    classifier = load(tmp_path / "classifier")
    assert classifier.class_names == ["bright", "dark", "mid"]  # the sorted class folders
    images = torch.rand(3, 3, 32, 32)
    mirrored = cfnb.explain(classifier, images, "bright", method="mirror", decoder=load(tmp_path / "decoder"),
                            progress=False)
    steered = cfnb.explain(classifier, images, "bright", method="latent", generator=load(tmp_path / "generator"),
                           steps=3, progress=False)
    assert mirrored.counterfactual.shape == steered.counterfactual.shape == (3, 3, 32, 32)
    rows = explain_with_config(tmp_path, {"classifier": "classifier", "data": str(folder), "target": "runner-up",
                                          "method": "mirror", "decoder": "decoder"})
    assert [row["index"] for row in rows] == list(range(36)) and all(row["source"] != row["target"] for row in rows)
    again = cfnb_command("fit", "classifier", "--data", str(folder), "--out", str(tmp_path / "classifier"),
                         "--no-progress")
    assert again.returncode == 2 and "is not empty" in again.stderr
    wrong = cfnb_command("fit", "editor", "--data", str(folder), "--out", str(tmp_path / "e"), "--epochs", "1")
    assert wrong.returncode == 2 and "--steps, not --epochs" in wrong.stderr


def test_cfnb_fit_on_a_fake_celeba_end_to_end(fake_celeba, tmp_path):
    reader = cfnb_command("fit", "classifier", "--data", f"celeba:{fake_celeba}", "--size", "16", "--out",
                          str(tmp_path / "reader"), "--epochs", "1", "--no-progress", "--device", "cpu")
    assert reader.returncode == 0, reader.stderr[-2000:]
    editor = cfnb_command("fit", "editor", "--data", f"celeba:{fake_celeba}", "--size", "16", "--out",
                          str(tmp_path / "editor"), "--classifier", str(tmp_path / "reader"), "--steps", "3",
                          "--batch-size", "2", "--no-progress", "--device", "cpu")
    assert editor.returncode == 0, editor.stderr[-2000:]
    loaded = load(tmp_path / "editor")
    assert len(loaded.attribute_names) == 40 and loaded.attribute_names[0] == "5_o_Clock_Shadow"
    smiling = cfnb.models.AttributeClassifier(load(tmp_path / "reader"), list(loaded.attribute_names), "Smiling")
    faces = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        other = 1 - smiling(faces).argmax(1)
    result = cfnb.explain(smiling, faces, other, method="attribute", editor=loaded, steps=2, progress=False)
    assert result.extras["attribute_delta"].shape == (2, 40)
    rows = explain_with_config(tmp_path, {"classifier": "reader", "attribute": "Smiling", "target": "next",
                                          "data": {"spec": f"celeba:{fake_celeba}", "size": 16},
                                          "method": "attribute", "editor": "editor", "options": {"steps": 2}})
    assert [row["index"] for row in rows] == [0, 1, 2]  # the fake CelebA's three training faces
