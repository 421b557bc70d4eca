"""Procedural faces: determinism, planted correlations, the renderer as a function of the parameters, ground-truth
counterfactuals and input validation. Model-based checks (the faces-classifier reads the edits) live in
test_models_faces.py."""
import pytest
import torch

from cfnb.data import AttributeDataset, FaceDataset, render_faces, sample_face_params, synth_faces
from cfnb.data.faces import ATTRIBUTES, CONTINUOUS_PARAMS, PARAM_NAMES, set_attribute


@pytest.fixture(scope="module")
def faces() -> FaceDataset:
    return synth_faces(120, seed=5)


def test_shapes_types_and_names(faces):
    assert isinstance(faces, AttributeDataset)
    assert faces.images.shape == (120, 3, 64, 64) and faces.images.dtype == torch.float32
    assert faces.images.min() >= 0 and faces.images.max() <= 1
    assert faces.attributes.shape == (120, len(ATTRIBUTES))
    assert set(faces.attributes.unique().tolist()) <= {0.0, 1.0}
    assert faces.attribute_names == list(ATTRIBUTES)
    for name in ("Smiling", "Mouth_Slightly_Open", "Eyeglasses", "Blond_Hair", "Black_Hair", "Bangs", "Male",
                 "Mustache", "Wearing_Hat", "Pale_Skin"):
        assert name in faces.attribute_names
    assert set(faces.params) == set(PARAM_NAMES)
    assert faces.nuisance["background"].dtype == torch.int64
    assert set(faces.nuisance["background"].unique().tolist()) <= {0, 1}
    for name in CONTINUOUS_PARAMS:
        assert faces.nuisance[name].shape == (120,)


def test_deterministic_for_a_seed_and_different_across_seeds(faces):
    again = synth_faces(120, seed=5)
    assert torch.equal(again.images, faces.images)
    assert torch.equal(again.attributes, faces.attributes)
    other = synth_faces(120, seed=6)
    assert not torch.equal(other.attributes, faces.attributes)
    assert (other.images - faces.images).abs().mean() > 0.05


def test_images_are_a_function_of_the_parameters(faces):
    assert torch.allclose(render_faces(faces.params, 64), faces.images)
    # a subset renders to the same pixels as in the full batch: no dependence on other faces
    sub = faces.subset_params([3, 7, 11])
    assert torch.allclose(render_faces(sub, 64), faces.images[[3, 7, 11]], atol=1e-6)
    small = render_faces(sub, 32)
    assert small.shape == (3, 3, 32, 32)


def test_hair_colours_are_exclusive_and_marginals_balanced():
    params = sample_face_params(20_000, seed=1)
    assert not bool(((params["Blond_Hair"] == 1) & (params["Black_Hair"] == 1)).any())
    for name in ("Male", "Smiling", "Eyeglasses", "Mouth_Slightly_Open"):
        assert abs(params[name].mean().item() - 0.5) < 0.02, name
    assert abs(params["Blond_Hair"].mean().item() - 1 / 3) < 0.02
    assert abs(params["background"].mean().item() - 0.5) < 0.02
    # independent by default: Smiling and Blond_Hair agree about half the time (blond is a third of the faces)
    agree = (params["Smiling"] == params["Blond_Hair"]).float().mean().item()
    assert abs(agree - 0.5) < 0.02


@pytest.mark.parametrize("p", [0.9, 0.5, 0.0, 1.0])
def test_attribute_correlation_is_planted(p):
    params = sample_face_params(20_000, seed=2, correlations={("Smiling", "Blond_Hair"): p})
    agree = (params["Smiling"] == params["Blond_Hair"]).float().mean().item()
    assert abs(agree - p) < 0.015
    assert not bool(((params["Blond_Hair"] == 1) & (params["Black_Hair"] == 1)).any())
    assert abs(params["Blond_Hair"].mean().item() - 0.5) < 0.02  # rate stays near 1/2 with a rate-1/2 source
    # the non-blond faces split between black and other hair
    not_blond = params["Blond_Hair"] == 0
    assert abs(params["Black_Hair"][not_blond].mean().item() - 0.5) < 0.03


def test_background_correlation_is_planted_and_exposed():
    faces = synth_faces(400, seed=3, correlations={("Male", "background"): 0.8})
    agree = (faces.nuisance["background"] == faces.attribute("Male").long()).float().mean().item()
    assert abs(agree - 0.8) < 0.06
    params = sample_face_params(20_000, seed=3, correlations={("Male", "background"): 0.8})
    assert abs((params["background"] == params["Male"]).float().mean().item() - 0.8) < 0.015
    # warm backgrounds (class 1) are redder than cool ones, in the image corners
    corner = faces.images[:, :, :6, :6].mean((2, 3))
    warm = faces.nuisance["background"] == 1
    assert (corner[warm, 0] - corner[warm, 2]).mean() > 0.1
    assert (corner[~warm, 2] - corner[~warm, 0]).mean() > 0.1


def test_chained_correlations_follow_their_sources():
    corr = {("Blond_Hair", "Male"): 1.0, ("Smiling", "Blond_Hair"): 1.0}  # given target-first on purpose
    params = sample_face_params(5_000, seed=4, correlations=corr)
    assert torch.equal(params["Blond_Hair"], params["Smiling"])
    assert torch.equal(params["Male"], params["Blond_Hair"])


def test_with_attribute_changes_only_that_attribute(faces):
    index = torch.arange(40)
    for name in ("Smiling", "Eyeglasses", "Wearing_Hat", "Mustache"):
        current = faces.attribute(name)[index]
        same = faces.with_attribute(name, current, index)
        assert torch.allclose(same, faces.images[index], atol=1e-6)  # setting the current value is a no-op
        flipped = faces.with_attribute(name, 1 - current, index)
        changed = (flipped - faces.images[index]).abs().amax(1) > 0.05  # (40, 64, 64) changed pixels
        assert bool(changed.flatten(1).any(1).all()), name  # every face changed ...
        assert changed.float().mean() < 0.2, name  # ... but only locally (the hat is the largest edit)
        expected = set_attribute(faces.subset_params(index), name, 1 - current)
        assert torch.allclose(flipped, render_faces(expected, 64))


def test_with_attribute_keeps_hair_exclusive(faces):
    black = torch.nonzero(faces.attribute("Black_Hair") == 1).flatten()[:5]
    params = set_attribute(faces.subset_params(black), "Blond_Hair", 1)
    assert params["Blond_Hair"].eq(1).all() and params["Black_Hair"].eq(0).all()
    images = faces.with_attribute("Blond_Hair", 1, black)
    assert torch.allclose(images, render_faces(params, 64))
    # un-blonding gives the "other" colour, not black
    blond = torch.nonzero(faces.attribute("Blond_Hair") == 1).flatten()[:5]
    params = set_attribute(faces.subset_params(blond), "Blond_Hair", 0)
    assert params["Blond_Hair"].eq(0).all() and params["Black_Hair"].eq(0).all()


def test_with_nuisance_changes_the_background_only(faces):
    index = [0, 1, 2]
    warm = faces.with_nuisance("background", 1, index)
    cool = faces.with_nuisance("background", 0, index)
    assert (warm[:, 0, :4, :4].mean() - cool[:, 0, :4, :4].mean()) > 0.1
    centre = slice(26, 38)
    assert torch.allclose(warm[:, :, centre, centre], cool[:, :, centre, centre], atol=1e-4)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_n(n):
    with pytest.raises(ValueError, match="n must be a positive int"):
        synth_faces(n)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_probability_outside_unit_interval(p):
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        synth_faces(10, correlations={("Smiling", "Blond_Hair"): p})


def test_unknown_names_and_ill_formed_correlations():
    with pytest.raises(ValueError, match="unknown name 'Smiles'.*Smiling"):
        synth_faces(10, correlations={("Smiles", "Blond_Hair"): 0.9})
    with pytest.raises(ValueError, match="more than one correlation"):
        sample_face_params(10, correlations={("Smiling", "Male"): 0.9, ("Eyeglasses", "Male"): 0.9})
    with pytest.raises(ValueError, match="cycle"):
        sample_face_params(10, correlations={("Smiling", "Male"): 0.9, ("Male", "Smiling"): 0.9})
    with pytest.raises(ValueError, match="itself"):
        sample_face_params(10, correlations={("Blond_Hair", "Black_Hair"): 0.9})
    with pytest.raises(ValueError, match="pair"):
        sample_face_params(10, correlations={"Smiling": 0.9})
    with pytest.raises(ValueError, match="size"):
        synth_faces(10, size=8)


def test_with_attribute_errors(faces):
    with pytest.raises(KeyError, match="unknown attribute 'Smile'"):
        faces.with_attribute("Smile", 1)
    with pytest.raises(ValueError, match="0 or 1"):
        faces.with_attribute("Smiling", 2)
    with pytest.raises(ValueError, match="one 0/1 value per selected face"):
        faces.with_attribute("Smiling", torch.ones(3), index=[0, 1])
    with pytest.raises(ValueError, match="lacks"):
        render_faces({"Male": torch.zeros(2)})
