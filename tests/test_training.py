"""cfnb.models.training.CompiledSteps: compiled training steps give the eager gradients, and fall back when
compiling fails."""
import copy

import torch
from torch import nn

from cfnb.models import training


def _model_and_batch():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 1)).train()
    images = torch.rand(5, 3, 8, 8)
    return model, images


def _loss_of(images):
    return lambda forward: (forward(images) - images).abs().mean()


def test_compiled_step_back_propagates_the_eager_gradients():
    model, images = _model_and_batch()
    eager = copy.deepcopy(model)
    messages: list[str] = []
    loss = training.CompiledSteps(model, log=messages.append).step(_loss_of(images))
    reference = _loss_of(images)(eager)
    reference.backward()
    assert messages == []
    assert torch.allclose(loss, reference, atol=1e-6)
    for compiled_parameter, eager_parameter in zip(model.parameters(), eager.parameters()):
        assert torch.allclose(compiled_parameter.grad, eager_parameter.grad, atol=1e-5)
    # the compiled module shares the module's buffers: BatchNorm's running statistics moved in place
    assert torch.allclose(model[1].running_mean, eager[1].running_mean, atol=1e-6)


def test_compiled_steps_fall_back_to_eager_and_say_so(torch_compile_fails):
    model, images = _model_and_batch()
    eager = copy.deepcopy(model)
    messages: list[str] = []
    steps = training.CompiledSteps(model, log=messages.append)
    loss = steps.step(_loss_of(images))
    reference = _loss_of(images)(eager)
    reference.backward()
    assert len(messages) == 1 and "RuntimeError: no C++ compiler" in messages[0] and "eagerly" in messages[0]
    assert torch.equal(loss, reference)
    for parameter, eager_parameter in zip(model.parameters(), eager.parameters()):
        assert torch.equal(parameter.grad, eager_parameter.grad)  # exactly the eager step's gradients
    steps.step(_loss_of(images))
    assert len(messages) == 1  # said once
