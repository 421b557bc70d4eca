"""cfnb.training.compiling: compiled training steps give the eager gradients and the compiled face renderer draws
what render_faces draws; both fall back to eager code, saying so once, when compiling fails."""
import copy

import torch
from torch import nn

from cfnb import training
from cfnb.data import render_faces, sample_face_params


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


def test_compiled_renderer_draws_what_render_faces_draws():
    """torch.compile's build of the renderer (used by the faces-editor recipe) against the eager one: on the call
    that compiles and checks, and on a later one that draws compiled only."""
    messages: list[str] = []
    compiled = training.compiled_face_renderer(log=messages.append)
    for seed in (11, 12):
        params = sample_face_params(6, seed=seed)
        assert torch.allclose(compiled(params, 32), render_faces(params, 32), atol=1e-4)
    assert messages == []


def test_compiled_renderer_falls_back_and_says_so(torch_compile_fails):
    messages: list[str] = []
    render = training.compiled_face_renderer(log=messages.append)
    params = sample_face_params(3, seed=5)
    assert torch.equal(render(params, 32), render_faces(params, 32))
    assert len(messages) == 1 and "could not build" in messages[0] and "RuntimeError" in messages[0]
    render(params, 32)
    assert len(messages) == 1  # said once
