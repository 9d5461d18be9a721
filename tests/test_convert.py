"""torchflip.convert / torchflip.revert: whole-model conversion between
torch.nn convolutions and torchflip's, computing the same function
(flip_weights=True) or keeping the weights (flip_weights=False)."""

import pytest
import torch
from torch import nn

import torchflip
import torchflip.nn as tnn
from tests.reference import flip_spatial, torch_conv

TORCH_TO_TORCHFLIP = {nn.Conv1d: tnn.Conv1d, nn.Conv2d: tnn.Conv2d, nn.Conv3d: tnn.Conv3d,
                      nn.ConvTranspose1d: tnn.ConvTranspose1d,
                      nn.ConvTranspose2d: tnn.ConvTranspose2d,
                      nn.ConvTranspose3d: tnn.ConvTranspose3d}


class Net(nn.Module):
    """Convolutions at several depths and in containers of every kind."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, padding="same", padding_mode="reflect")
        self.blocks = nn.Sequential(
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.BatchNorm2d(8), nn.ReLU()),
            nn.ModuleList([nn.Conv2d(8, 8, 1), nn.ReLU()]),
        )
        self.heads = nn.ModuleDict({"up": nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1,
                                                             output_padding=1)})
        self.sequence = nn.Conv1d(4, 2, 3)

    def forward(self, x):
        x = self.stem(x)
        x = self.blocks[0](x)
        for layer in self.blocks[1]:
            x = layer(x)
        x = self.heads["up"](x)
        return self.sequence(x.flatten(2)[..., :50])


def _convs(model):
    return [(name, m) for name, m in model.named_modules()
            if type(m) in TORCH_TO_TORCHFLIP or type(m) in TORCH_TO_TORCHFLIP.values()]


def _net():
    return Net().eval()


def test_convert_replaces_every_convolution_and_computes_the_same_function():
    model = _net()
    converted = torchflip.convert(model)
    originals, replacements = dict(_convs(model)), dict(_convs(converted))
    assert originals.keys() == replacements.keys() and len(originals) == 5
    for name, original in originals.items():
        assert type(replacements[name]) is TORCH_TO_TORCHFLIP[type(original)], name
        assert torch.equal(replacements[name].weight, flip_spatial(original.weight)), name
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(converted(x), model(x))


def test_convert_leaves_other_modules_and_buffers_alone():
    model = _net()
    model.blocks[0][1].running_mean.fill_(0.5)
    converted = torchflip.convert(model)
    assert type(converted.blocks[0][1]) is nn.BatchNorm2d
    assert torch.equal(converted.blocks[0][1].running_mean, model.blocks[0][1].running_mean)
    assert [k for k in converted.state_dict()] == [k for k in model.state_dict()]


def test_convert_returns_a_copy_by_default():
    model = _net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    converted = torchflip.convert(model)
    assert converted is not model
    assert all(type(m) in TORCH_TO_TORCHFLIP for _, m in _convs(model))
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_convert_inplace_modifies_the_model():
    model = _net()
    x = torch.randn(1, 3, 8, 8)
    expected = model(x)
    result = torchflip.convert(model, inplace=True)
    assert result is model
    assert all(type(m) in TORCH_TO_TORCHFLIP.values() for _, m in _convs(model))
    torch.testing.assert_close(model(x), expected)


def test_convert_a_bare_convolution():
    conv = nn.Conv3d(2, 3, 3)
    converted = torchflip.convert(conv)
    assert type(converted) is tnn.Conv3d
    x = torch.randn(1, 2, 5, 5, 5)
    torch.testing.assert_close(converted(x), conv(x))


def test_convert_without_flip_keeps_weights_so_the_function_becomes_true_convolution():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False))
    converted = torchflip.convert(model, flip_weights=False)
    assert torch.equal(converted[0].weight, model[0].weight)
    x = torch.randn(1, 2, 6, 6)
    torch.testing.assert_close(converted(x), torch_conv(x, model[0].weight))


def test_revert_inverts_convert_exactly():
    model = _net()
    back = torchflip.revert(torchflip.convert(model))
    for (name, original), (_, restored) in zip(_convs(model), _convs(back)):
        assert type(restored) is type(original), name
        assert torch.equal(restored.weight, original.weight), name
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(back(x), model(x))
    kept = torchflip.revert(torchflip.convert(model, flip_weights=False), flip_weights=False)
    for (name, original), (_, restored) in zip(_convs(model), _convs(kept)):
        assert torch.equal(restored.weight, original.weight), name


def test_subclasses_of_torch_convolutions_are_left_alone():
    """A subclass may override forward; converting it would change what it
    computes."""

    class Custom(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 2

    model = nn.Sequential(Custom(2, 2, 3), nn.Conv2d(2, 2, 3))
    converted = torchflip.convert(model)
    assert type(converted[0]) is Custom
    assert type(converted[1]) is tnn.Conv2d


def test_shared_convolution_stays_shared():
    """A module used twice (tied weights) must become one torchflip module
    used twice, so that training keeps the weights tied."""
    shared = nn.Conv2d(2, 2, 3, padding=1)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    converted = torchflip.convert(model)
    assert converted[0] is converted[2]
    assert len(list(converted.parameters())) == len(list(model.parameters()))
    reverted = torchflip.revert(converted)
    assert reverted[0] is reverted[2]


def _train_side_by_side(model, converted, x, steps):
    """The same SGD steps on both models."""
    for m in (model, converted):
        optimizer = torch.optim.SGD(m.parameters(), lr=0.1)
        for _ in range(steps):
            optimizer.zero_grad()
            m(x).square().mean().backward()
            optimizer.step()


def test_converted_model_trains_like_the_original():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.ConvTranspose2d(4, 2, 3)).double()
    converted = torchflip.convert(model)
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    _train_side_by_side(model, converted, x, steps=2)
    torch.testing.assert_close(converted(x), model(x))
    torch.testing.assert_close(converted[0].weight, flip_spatial(model[0].weight))


@pytest.mark.parametrize("function", [torchflip.convert, torchflip.revert])
def test_lazy_modules_are_refused_or_left_alone(function):
    """An uninitialised lazy layer has no weight to flip: conversion must not
    silently produce a wrong layer."""
    model = nn.Sequential(tnn.LazyConv2d(2, 3) if function is torchflip.revert
                          else nn.LazyConv2d(2, 3))
    try:
        converted = function(model)
    except ValueError:
        return
    assert type(converted[0]) is type(model[0])


def test_convert_sets_the_engine_of_every_forward_convolution():
    model = _net()
    for method in ("auto", "direct", "fft"):
        converted = torchflip.convert(model, method=method)
        forward = [m for _, m in _convs(converted)
                   if not isinstance(m, nn.modules.conv._ConvTransposeNd)]
        assert len(forward) == 4 and all(m.method == method for m in forward), method
    with pytest.raises(ValueError, match="'method'.*'fastest'"):
        torchflip.convert(model, method="fastest")


def test_convert_with_the_direct_engine_trains_bit_for_bit_like_the_original():
    """A single-channel 7x7 layer is one 'auto' may run through the FFT; with
    method='direct' the converted model runs torch's kernels on the flipped
    weight, so training steps agree exactly, not just to rounding."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 7, padding=3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    converted = torchflip.convert(model, method="direct")
    x = torch.randn(3, 1, 12, 12)
    _train_side_by_side(model, converted, x, steps=3)
    assert torch.equal(converted(x), model(x))
    assert torch.equal(converted[0].weight, flip_spatial(model[0].weight))
