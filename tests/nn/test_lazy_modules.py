"""torchflip.nn.LazyConv*/LazyConvTranspose*: in_channels inferred from the
first input, after which the module is the corresponding torchflip layer,
initialised exactly as torch's lazy layer would be."""

import pytest
import torch
from torch import nn

import torchflip.nn as tnn
from tests.reference import torch_conv, torch_conv_transpose

CASES = [
    (tnn.LazyConv1d, tnn.Conv1d, nn.LazyConv1d, 1),
    (tnn.LazyConv2d, tnn.Conv2d, nn.LazyConv2d, 2),
    (tnn.LazyConv3d, tnn.Conv3d, nn.LazyConv3d, 3),
    (tnn.LazyConvTranspose1d, tnn.ConvTranspose1d, nn.LazyConvTranspose1d, 1),
    (tnn.LazyConvTranspose2d, tnn.ConvTranspose2d, nn.LazyConvTranspose2d, 2),
    (tnn.LazyConvTranspose3d, tnn.ConvTranspose3d, nn.LazyConvTranspose3d, 3),
]
IDS = [c[0].__name__ for c in CASES]


@pytest.mark.parametrize("lazy_cls,final_cls,torch_cls,dims", CASES, ids=IDS)
def test_first_call_infers_in_channels_and_initialises_like_torch(lazy_cls, final_cls, torch_cls,
                                                                  dims):
    x = torch.randn(2, 4, *[5] * dims)
    torch.manual_seed(5)
    ours = lazy_cls(6, 3, groups=2)
    out = ours(x)
    torch.manual_seed(5)
    theirs = torch_cls(6, 3, groups=2)
    theirs(x)
    assert type(ours) is final_cls
    assert ours.in_channels == theirs.in_channels == 4
    assert torch.equal(ours.weight, theirs.weight)
    assert torch.equal(ours.bias, theirs.bias)
    reference = torch_conv_transpose if ours.transposed else torch_conv
    torch.testing.assert_close(out, reference(x, ours.weight, ours.bias, groups=2))


@pytest.mark.parametrize("lazy_cls,final_cls,torch_cls,dims", CASES, ids=IDS)
def test_without_bias(lazy_cls, final_cls, torch_cls, dims):
    ours = lazy_cls(3, 2, bias=False)
    ours(torch.randn(1, 5, *[4] * dims))
    assert ours.bias is None
    assert "bias" not in ours.state_dict()


@pytest.mark.parametrize("lazy_cls,final_cls,torch_cls,dims", CASES, ids=IDS)
def test_conversion_before_initialisation_is_refused(lazy_cls, final_cls, torch_cls, dims):
    with pytest.raises(ValueError, match="not initialised"):
        lazy_cls(3, 2).to_torch()


def test_input_channels_not_divisible_by_groups():
    with pytest.raises(ValueError):
        tnn.LazyConv2d(4, 3, groups=2)(torch.randn(1, 3, 5, 5))


def test_unbatched_first_input():
    conv = tnn.LazyConv2d(4, 3, padding="same")
    out = conv(torch.randn(3, 6, 6))
    assert conv.in_channels == 3 and out.shape == (4, 6, 6)


def test_load_state_dict_initialises_lazy_parameters():
    source = tnn.Conv2d(3, 4, 3)
    lazy = tnn.LazyConv2d(4, 3)
    lazy.load_state_dict(source.state_dict())
    x = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(lazy(x), source(x))
    assert type(lazy) is tnn.Conv2d
