"""GAP views of users' classifiers (``cfnb.models.gap_view``): torchvision's families recognised by structure with
exactly the model's logits, clear errors for non-linear heads, one-line views of other GAP networks, and Mirror-CFE
end to end on a torchvision ResNet18. Models are built with ``weights=None`` (random initialisation, no download)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import cfnb
from cfnb.models import GAPView, gap_view

tv = pytest.importorskip("torchvision.models")


def calibrated(model: nn.Module, size: int = 64) -> nn.Module:
    """The model in eval mode with BatchNorm statistics from random images (freshly built torchvision models have
    running statistics (0, 1), which leaves some with logits near 1e-14: too small for a comparison to mean
    anything)."""
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: one batch sets the statistics
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 3, size, size))
    return model.eval()


def view_logits(view: GAPView, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return view.head(view.features(x).mean((2, 3))), view.model(x)


def assert_exact(view: GAPView, x: torch.Tensor) -> None:
    seen, logits = view_logits(view, x)
    assert logits.std() > 1e-2, "degenerate logits would make the comparison vacuous"
    assert torch.allclose(seen, logits, rtol=1e-4, atol=1e-5 * logits.abs().max().item())


FAMILIES = [
    ("resnet18", "ResNet", 512),
    ("regnet_y_400mf", "RegNet", 440),
    ("densenet121", "features + classifier", 1024),
    ("efficientnet_b0", "features + avgpool + classifier", 1280),
    ("mobilenet_v2", "features + classifier", 1280),
    ("convnext_tiny", "features + avgpool + classifier", 768),
    ("shufflenet_v2_x0_5", "ShuffleNetV2", 1024),
    ("mnasnet0_5", "MNASNet", 1280),
]


@pytest.mark.parametrize("name, family, channels", FAMILIES)
def test_recognised_families_give_exactly_the_models_logits(name, family, channels):
    model = calibrated(getattr(tv, name)(weights=None))
    view = gap_view(model)
    assert view.family == family
    assert view.in_channels == 3
    x = torch.rand(3, 3, 64, 64)
    assert view.features(x).shape == (3, channels, 2, 2)
    assert_exact(view, x)
    with torch.no_grad():
        assert torch.equal(view(x), model(x))  # the view's forward is the model's


def test_resnet18_at_224_px_has_7x7_features():
    model = calibrated(tv.resnet18(weights=None), size=224)
    view = gap_view(model)
    x = torch.rand(2, 3, 224, 224)
    assert view.features(x).shape == (2, 512, 7, 7)
    assert_exact(view, x)


def test_pooling_the_wrong_layer_is_caught():
    """The exact-logits comparison has teeth: a view stopping one block early (same width) is not the model, and
    DenseNet's map without the ReLU its forward applies is refused by the probe."""
    resnet = calibrated(tv.resnet18(weights=None))
    early = GAPView(resnet, ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4.0"), "fc")
    seen, logits = view_logits(early, torch.rand(3, 3, 64, 64))
    assert not torch.allclose(seen, logits, rtol=1e-4, atol=1e-5 * logits.abs().max().item())
    densenet = calibrated(tv.densenet121(weights=None))
    with pytest.raises(TypeError, match="differ from DenseNet's"):
        gap_view(densenet, features="features", head="classifier")
    assert gap_view(densenet).activation == "relu"


def test_convnext_named_parts_keep_the_layer_norm_exact():
    model = tv.convnext_tiny(weights=None).eval()
    view = gap_view(model, features="features", head="classifier")
    assert view.head is model.classifier[2]
    assert_exact(view, torch.rand(2, 3, 64, 64))


def test_mobilenet_v3_head_is_refused_clearly():
    with pytest.raises(TypeError) as error:
        gap_view(tv.mobilenet_v3_small(weights=None))
    message = str(error.value)
    for part in ("MobileNetV3", "not linear", "Linear(576→1024) → Hardswish", "2 Linear layers",
                 "gap_view(model, features=..., head=", "fine-tune a linear head"):
        assert part in message


class TinyGAP(nn.Module):
    """A GAP network of no known layout: ``body`` gives the map, ``fc`` reads its spatial mean."""

    def __init__(self, head: nn.Module | None = None):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = head if head is not None else nn.Linear(16, 4)
        self.class_names = ["a", "b", "c", "d"]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.body(x)).flatten(1))


def test_mlp_head_is_refused_clearly():
    model = TinyGAP(nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)))
    model.features, model.avgpool = model.body, model.pool  # laid out as torchvision's features + avgpool + classifier
    with pytest.raises(TypeError, match=r"not linear in the pooled features: Linear\(16→32\) → ReLU → Linear"):
        gap_view(model)
    with pytest.raises(TypeError, match="not linear"):
        gap_view(model, features="body", head="classifier")
    with pytest.raises(TypeError, match=r"global average pooling(.|\n)*cfnb\.models\.gap_view"):
        cfnb.explain(model, torch.rand(2, 3, 16, 16), 1, method="mirror", progress=False)


def test_unknown_layout_says_how_to_name_the_parts():
    with pytest.raises(TypeError, match=r"does not recognise TinyGAP(.|\n)*features='<submodule or method"):
        gap_view(TinyGAP())


def test_named_parts_give_a_one_line_view():
    torch.manual_seed(0)
    model = TinyGAP().eval()
    x = torch.rand(3, 3, 32, 32)
    for features in ("body", "forward_features", model.body, model.forward_features, lambda images: model.body(images)):
        view = gap_view(model, features=features, head="classifier")
        assert view.head is model.classifier
        assert_exact(view, x)
    view = gap_view(model, features="body", head=model.classifier)
    assert view.class_names == ["a", "b", "c", "d"] and view.in_channels == 3
    assert not hasattr(view, "cfnb_name")
    twin = copy.deepcopy(view)  # parts are names: the copy reads its own model
    assert twin.head is twin.model.classifier and twin.head is not model.classifier
    with pytest.raises(TypeError, match="differ from TinyGAP's"):
        gap_view(model, features=("body.0", "body.1", "body.2"), head="classifier")  # the map before the last ReLU
    with pytest.raises(TypeError, match="do not run together"):
        gap_view(model, features="pool", head="classifier")  # a (N, 3, 1, 1) map: the head reads 16 features
    with pytest.raises(TypeError, match="has no 'trunk'"):
        gap_view(model, features="trunk", head="classifier")
    with pytest.raises(TypeError, match="both features= and head="):
        gap_view(model, features="body")


def test_decoder_upsamplings_follow_the_feature_map():
    from cfnb.training import train_decoder

    torch.manual_seed(0)
    small = gap_view(TinyGAP().eval(), features="body", head="classifier")  # 32 px -> 8x8: 4x
    decoder = train_decoder(small, torch.rand(8, 3, 32, 32), epochs=1, log=None, progress=False)
    assert decoder.upsamplings == 2
    resnet = tv.resnet18(weights=None, num_classes=10).eval()  # 224 px -> 7x7: 32x
    decoder = train_decoder(resnet, torch.rand(2, 3, 224, 224), epochs=1, batch_size=2, width=16, log=None,
                            progress=False)
    assert decoder.upsamplings == 5
    with torch.no_grad():
        assert decoder(gap_view(resnet).features(torch.rand(1, 3, 224, 224))).shape == (1, 3, 224, 224)


def test_mirror_explains_a_torchvision_resnet_end_to_end():
    from cfnb.training import train_decoder

    torch.manual_seed(0)
    resnet = tv.resnet18(weights=None, num_classes=10).eval()
    images = torch.rand(32, 3, 64, 64)
    decoder = train_decoder(resnet, images, epochs=1, log=None, progress=False)
    assert decoder.upsamplings == 5  # 64 px -> 2x2
    x = images[:3]
    with torch.no_grad():
        target = (resnet(x).argmax(1) + 1) % 10
    # a one-epoch decoder rarely turns an image: a few refinement steps keep that path exercised and the test short
    result = cfnb.explain(resnet, x, target, method="mirror", decoder=decoder, frames=6, refine_steps=3,
                          progress=False)
    assert result.counterfactual.shape == (3, 3, 64, 64)
    assert result.trajectory.shape == (6, 3, 3, 64, 64)
    assert result.extras["boundary_k"].shape == (3,)
    assert result.extras["pooled_end"].shape == (3, 512)
    assert torch.equal(result.target, target)
    assert result.prediction.shape == (3,) and resnet.training is False
