"""cfnb.viz: figures and files from hand-made and real results (no browser; JSON and file checks)."""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import torch
from fake_results import make_result
from PIL import Image

from cfnb import viz
from cfnb.viz.animation import flip_frame, frame_positions

torch.set_num_threads(1)


def decode_uri(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def image_traces(figure):
    return [trace for trace in figure.data if trace.type == "image"]


# --- PNG conversion ----------------------------------------------------------------------------------------------
def test_png_data_uri_keeps_grey_grey_and_colour_colour():
    grey = decode_uri(viz.png_data_uri(torch.rand(1, 5, 7)))
    colour = decode_uri(viz.png_data_uri(torch.rand(3, 5, 7), scale=3))
    assert (grey.mode, grey.size) == ("L", (7, 5))
    assert (colour.mode, colour.size) == ("RGB", (21, 15))


def test_png_values_are_exact_and_clipped():
    image = torch.tensor([[[0.0, 1.0, 2.0, -1.0]]])
    assert np.asarray(decode_uri(viz.png_data_uri(image))).ravel().tolist() == [0, 255, 255, 0]


def test_png_rejects_odd_channel_counts():
    with pytest.raises(ValueError, match="1 or 3 channels"):
        viz.png_data_uri(torch.rand(2, 4, 4))


def test_difference_rgb_is_white_at_zero_red_brighter_blue_darker():
    original = torch.full((1, 1, 3), 0.5)
    counterfactual = torch.tensor([[[0.5, 1.0, 0.0]]])
    same, brighter, darker = viz.difference_rgb(original, counterfactual)[0]
    assert same.tolist() == [247, 247, 247]
    assert brighter[0] > brighter[2] and darker[2] > darker[0]


# --- animate -----------------------------------------------------------------------------------------------------
def test_animate_has_one_frame_per_trajectory_frame_with_play_pause_and_slider():
    result = make_result(frames=6)
    figure = viz.animate(result, index=0)
    assert len(figure.frames) == 6
    assert [f.name for f in figure.frames] == [str(t) for t in range(6)]
    assert len(figure.layout.sliders[0].steps) == 6
    assert [b.label for b in figure.layout.updatemenus[0].buttons] == ["▶ play", "❚❚ pause"]
    assert figure.layout.updatemenus[0].buttons[0].args[1]["frame"]["redraw"] is True
    # every frame shows exactly one picture, its own
    for t, frame in enumerate(figure.frames):
        opacities = [d.opacity for d in frame.data if d.type == "image"]
        assert opacities.count(1.0) == 1 and opacities.index(1.0) == t


def test_animate_labels_title_axes_and_classes():
    result = make_result(frames=6)
    figure = viz.animate(result, 0)
    title = figure.layout.title.text
    assert re.fullmatch(r"class0 → class1 \(pixel\): p\(class1\) \d\.\d\d → \d\.\d\d", title), title
    p_before = float(result.original_probabilities[0, 1])
    p_after = float(result.probabilities[0, 1])
    assert title.endswith(f"{p_before:.2f} → {p_after:.2f}")
    names = [trace.name for trace in figure.data if trace.type == "scatter" and trace.mode == "lines"]
    assert names[:2] == ["class0 (source)", "class1 (target)"]
    assert len(names) == 4  # top_k classes
    assert figure.layout.xaxis2.title.text == "frame along the path (0 = original)"
    assert figure.layout.yaxis2.title.text == "class probability"
    assert figure.frames[3].layout.xaxis.title.text.startswith("frame 3/5: predicts")


def test_animate_marks_the_flip_frame():
    result = make_result(frames=9)
    figure = viz.animate(result, 0)
    flip = flip_frame(result.trajectory_probabilities[:, 0].numpy(), 1)
    assert 0 < flip < 8
    assert figure.layout.shapes[0].x0 == flip and figure.layout.shapes[0].xref == "x2"
    assert any(a.text == f"flips to class1 at frame {flip}" for a in figure.layout.annotations)
    never = viz.animate(result, 1)  # sample 1 never reaches the target
    assert not never.layout.shapes
    assert any(a.text == "never predicted class1" for a in never.layout.annotations)


def test_animate_marker_moves_with_the_frame():
    figure = viz.animate(make_result(frames=5), 0)
    xs = [next(d for d in frame.data if d.type == "scatter").x[0] for frame in figure.frames]
    assert list(xs) == [0, 1, 2, 3, 4]


def test_animate_grey_images_are_grey_pngs():
    figure = viz.animate(make_result(channels=1, side=8, frames=3), 0)
    assert {decode_uri(trace.source).mode for trace in image_traces(figure)} == {"L"}


def test_animate_32_frames_of_64px_rgb_stay_under_1mb():
    """The JSON bound holds even for incompressible (white-noise) 64x64 RGB frames."""
    figure = viz.animate(make_result(n=1, channels=3, side=64, frames=32, smooth=False), 0)
    size = len(figure.to_json())
    assert len(figure.frames) == 32
    assert size < 1_000_000, size
    smooth = viz.animate(make_result(n=1, channels=3, side=64, frames=32, smooth=True), 0)
    assert len(smooth.to_json()) < size


def test_animate_frames_keeps_first_and_last():
    assert frame_positions(100, 10)[0] == 0 and frame_positions(100, 10)[-1] == 99
    figure = viz.animate(make_result(frames=40), 0, frames=8)
    assert len(figure.frames) == 8 and figure.frames[-1].name == "39"


def test_animate_checks_its_arguments():
    result = make_result(n=2)
    with pytest.raises(IndexError, match="out of range"):
        viz.animate(result, 5)
    with pytest.raises(TypeError, match="Counterfactuals"):
        viz.animate({"not": "a result"}, 0)


def test_animate_writes_static_html(tmp_path):
    path = viz.to_html(make_result(frames=4), tmp_path / "anim.html")
    text = path.read_text()
    assert "Plotly.newPlot" in text and "addFrames" in text
    assert not re.search(r"<script[^>]*src=", text)  # self-contained: plotly.js is inside, nothing fetched


# --- compare -----------------------------------------------------------------------------------------------------
def test_compare_grid_rows_labels_and_centred_colour_scale():
    result = make_result(n=3, side=8)
    figure = viz.compare(result)
    kinds = [trace.type for trace in figure.data]
    assert kinds == ["image", "image", "heatmap"] * 3
    labels = [figure.layout[f"yaxis{3 * r + 1 if r else ''}"].title.text for r in range(3)]
    assert labels == ["#0  class0→class1 ✓", "#1  class0→class1 ✗", "#2  class0→class1 ✓"]
    axis = figure.layout.coloraxis
    assert axis.cmid == 0 and axis.cmin == -axis.cmax and axis.colorbar.title.text
    heat = figure.data[2]
    expected = (result.counterfactual[0] - result.original[0]).mean(0)
    assert torch.allclose(torch.tensor(heat.z, dtype=torch.float32), expected, atol=1e-3)


def test_compare_indices_and_max_images():
    result = make_result(n=5)
    assert len(viz.compare(result, max_images=2).data) == 6
    figure = viz.compare(result, indices=[4, 1])
    assert figure.layout.yaxis.title.text.startswith("#4")
    with pytest.raises(IndexError):
        viz.compare(result, indices=[9])


# --- attribute deltas ----------------------------------------------------------------------------------------------
def test_attribute_deltas_sorted_by_size_with_labels():
    names = ["Smiling", "Male", "Young", "Blond_Hair", "Eyeglasses"]
    result = make_result(n=2, attributes=names)
    figure = viz.attribute_deltas(result, 1)
    bar = figure.data[0]
    magnitudes = [abs(v) for v in bar.x]
    assert magnitudes == sorted(magnitudes)  # Plotly draws the first at the bottom: largest on top
    delta = result.extras["attribute_delta"][1]
    assert bar.y[-1] == names[int(delta.abs().argmax())]
    assert figure.layout.xaxis.title.text and figure.layout.yaxis.title.text == "attribute"


def test_attribute_deltas_explains_when_there_are_none():
    with pytest.raises(ValueError, match="no attribute deltas.*method='attribute'"):
        viz.attribute_deltas(make_result(method="mirror"), 0)


# --- files -------------------------------------------------------------------------------------------------------
def test_to_gif_has_one_frame_per_trajectory_frame(tmp_path):
    result = make_result(n=2, channels=3, side=16, frames=12)
    path = viz.to_gif(result, tmp_path / "path.gif", index=1, duration_ms=50, scale=2)
    with Image.open(path) as gif:
        assert gif.n_frames == 12
        assert gif.size == (32, 32 + 2)  # the image plus the progress strip


def test_to_gif_keeps_repeated_frames(tmp_path):
    """A path that stops early repeats its last frame; GIF writers merge identical frames, the strip prevents it."""
    result = make_result(n=1, channels=1, side=8, frames=10)
    frozen = result.trajectory.clone()
    frozen[5:] = frozen[5]
    from dataclasses import replace

    path = viz.to_gif(replace(result, trajectory=frozen), tmp_path / "still.gif", scale=2)
    with Image.open(path) as gif:
        assert gif.n_frames == 10


def test_gallery_html_is_self_contained(tmp_path):
    result = make_result(n=3, side=8)
    path = viz.gallery_html(result, tmp_path / "gallery.html", title="Digits <3>")
    text = path.read_text()
    assert text.count('src="data:image/png;base64,') == 9
    assert "Digits &lt;3&gt;" in text and "class0 → class1" in text
    assert text.count("✓") >= 2 and "✗" in text
    assert "http" not in text  # nothing fetched from the network


# --- with the real engine ------------------------------------------------------------------------------------------
def test_figures_from_a_real_pixel_result(tiny_classifier, tiny_images, tmp_path):
    import cfnb

    result = cfnb.explain(tiny_classifier, tiny_images[:3], target=2, method="pixel", steps=60, frames=7)
    figure = viz.animate(result, 0)
    assert len(figure.frames) == 7
    assert len(viz.compare(result).data) == 9
    with Image.open(viz.to_gif(result, tmp_path / "real.gif")) as gif:
        assert gif.n_frames == 7


def test_probability_bars_colours_the_prediction_and_the_target():
    figure = viz.probability_bars(torch.tensor([0.1, 0.7, 0.2]), ["a", "b", "c"], target=2, title="t")
    bar = figure.data[0]
    assert list(bar.x) == ["a", "b", "c"] and list(bar.y) == pytest.approx([0.1, 0.7, 0.2])
    assert bar.marker.color[1] != bar.marker.color[2] != bar.marker.color[0]
    with pytest.raises(ValueError, match="3 probabilities but 2 class names"):
        viz.probability_bars([0.1, 0.7, 0.2], ["a", "b"])
    with pytest.raises(ValueError, match="target 5 out of range"):
        viz.probability_bars([0.1, 0.7, 0.2], ["a", "b", "c"], target=5)
