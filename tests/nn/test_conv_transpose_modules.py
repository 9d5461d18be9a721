"""torchflip.nn.ConvTranspose1d/2d/3d: torch.nn's transposed layers with the
kernel flipped, i.e. the adjoint of torchflip.nn.ConvNd with the same
weight; forward(input, output_size) as torch's."""

import inspect

import pytest
import torch
from torch import nn

import torchflip.nn as tnn
from tests.reference import flip_spatial, torch_conv_transpose

DIMS = [1, 2, 3]
CLASSES = {1: (tnn.ConvTranspose1d, nn.ConvTranspose1d),
           2: (tnn.ConvTranspose2d, nn.ConvTranspose2d),
           3: (tnn.ConvTranspose3d, nn.ConvTranspose3d)}
CONVS = {1: tnn.Conv1d, 2: tnn.Conv2d, 3: tnn.Conv3d}
ATTRIBUTES = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
              "groups", "padding_mode", "transposed", "output_padding"]


def _input(dims, batch=2, channels=4, size=4, dtype=torch.float32):
    return torch.randn(batch, channels, *[size + i for i in range(dims)], dtype=dtype)


@pytest.mark.parametrize("dims", DIMS)
def test_constructor_signature_is_torch_signature(dims):
    ours, theirs = (inspect.signature(c.__init__).parameters for c in CLASSES[dims])
    assert list(ours) == list(theirs)
    assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]
    forward_ours, forward_theirs = (inspect.signature(c.forward).parameters
                                    for c in CLASSES[dims])
    assert list(forward_ours) == list(forward_theirs)


@pytest.mark.parametrize("dims", DIMS)
def test_not_a_torch_conv_transpose_subclass(dims):
    ours, theirs = CLASSES[dims]
    assert not issubclass(ours, theirs)


@pytest.mark.parametrize("dims", DIMS)
def test_attributes_initialisation_and_state_dict_match_torch(dims):
    ours_cls, torch_cls = CLASSES[dims]
    kwargs = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    torch.manual_seed(3)
    ours = ours_cls(4, 6, 3, **kwargs)
    torch.manual_seed(3)
    theirs = torch_cls(4, 6, 3, **kwargs)
    for name in ATTRIBUTES:
        assert getattr(ours, name) == getattr(theirs, name), name
    state, torch_state = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(torch_state)
    for key in state:
        assert torch.equal(state[key], torch_state[key]), key


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(stride=2, padding=1, output_padding=1, groups=2),
    dict(stride=3, padding=2, output_padding=1, dilation=2, bias=False),
], ids=["defaults", "strided-grouped", "dilated-no-bias"])
def test_forward_is_torch_layer_with_flipped_weight(dims, kwargs):
    ours_cls, torch_cls = CLASSES[dims]
    kernel = (3, 2, 4)[:dims]
    ours = ours_cls(4, 6, kernel, **kwargs).double()
    theirs = torch_cls(4, 6, kernel, **kwargs).double()
    with torch.no_grad():
        theirs.weight.copy_(flip_spatial(ours.weight))
        if ours.bias is not None:
            theirs.bias.copy_(ours.bias)
    x = _input(dims, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours(x[0]), theirs(x[0]))  # unbatched
    torch.testing.assert_close(ours(x), torch_conv_transpose(x, ours.weight, ours.bias,
                                                             **{k: v for k, v in kwargs.items()
                                                                if k != "bias"}))


@pytest.mark.parametrize("output_size", [None, [9, 10], [10, 9], (2, 6, 10, 10), [10, 10]],
                         ids=str)
def test_output_size_matches_torch(output_size):
    theirs = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2)
    ours = tnn.ConvTranspose2d.from_torch(theirs)
    x = _input(2, size=5)[..., :5]
    out = ours(x, output_size=output_size)
    expected = theirs(x, output_size=output_size)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected)


def test_output_size_out_of_range_is_rejected_like_torch():
    ours = tnn.ConvTranspose2d(4, 6, 3, stride=2, padding=1)
    theirs = ours.to_torch()
    x = _input(2, size=5)
    with pytest.raises(ValueError):
        theirs(x, output_size=[20, 20])
    with pytest.raises(ValueError):
        ours(x, output_size=[20, 20])


@pytest.mark.parametrize("dims", DIMS)
def test_adjoint_of_conv_module_with_the_same_weight(dims):
    """<Conv(x), y> == <x, ConvTranspose(y)> without bias, when ConvTranspose
    holds the Conv weight (C_out, C_in/g, *K), read as (C_in', C_out'/g, *K)."""
    conv = CONVS[dims](4, 6, 3, stride=2, padding=1, groups=2, bias=False).double()
    up = CLASSES[dims][0](6, 4, 3, stride=2, padding=1, output_padding=1, groups=2,
                          bias=False).double()
    with torch.no_grad():
        up.weight.copy_(conv.weight)
    x = torch.randn(2, 4, *[8] * dims, dtype=torch.float64)  # even: output_padding=1 fits
    y = torch.randn_like(conv(x))
    assert up(y).shape == x.shape
    torch.testing.assert_close((conv(x) * y).sum(), (x * up(y)).sum())


@pytest.mark.parametrize("dims", DIMS)
def test_from_torch_and_to_torch(dims):
    ours_cls, torch_cls = CLASSES[dims]
    theirs = torch_cls(4, 6, 3, stride=2, padding=1, output_padding=1, dilation=1, groups=2)
    ours = ours_cls.from_torch(theirs)
    for name in ATTRIBUTES:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert torch.equal(ours.weight, flip_spatial(theirs.weight))
    x = _input(dims)
    torch.testing.assert_close(ours(x), theirs(x))
    back = ours.to_torch()
    assert type(back) is torch_cls and torch.equal(back.weight, theirs.weight)
    kept = ours_cls.from_torch(theirs, flip_weights=False)
    assert torch.equal(kept.weight, theirs.weight)


def test_from_torch_rejects_a_forward_convolution():
    with pytest.raises(TypeError, match="ConvTranspose2d.from_torch expects"):
        tnn.ConvTranspose2d.from_torch(nn.Conv2d(2, 2, 3))


def test_only_zeros_padding_mode_like_torch():
    with pytest.raises(ValueError, match="zeros"):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="zeros"):
        tnn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


def test_training_step_matches_torch_with_flipped_weights():
    theirs = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2).double()
    ours = tnn.ConvTranspose2d.from_torch(theirs)
    x = _input(2, dtype=torch.float64)
    for model in (ours, theirs):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model(x).square().mean().backward()
        optimizer.step()
    torch.testing.assert_close(ours.weight, flip_spatial(theirs.weight))
    torch.testing.assert_close(ours.bias, theirs.bias)


def test_repr_names_torchflip():
    text = repr(tnn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=1))
    assert text.startswith("torchflip.nn.ConvTranspose2d(")
    assert nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=1).extra_repr() in text
