"""torchflip.nn.Conv1d/2d/3d: torch.nn's constructor, attributes,
initialisation and state_dict, computing true convolution; from_torch and
to_torch convert exactly."""

import copy
import inspect
import pickle

import pytest
import torch
from torch import nn

import torchflip.nn as tnn
from torchflip.nn import conv as conv_module
from tests.reference import flip_spatial, torch_conv

DIMS = [1, 2, 3]
CLASSES = {1: (tnn.Conv1d, nn.Conv1d), 2: (tnn.Conv2d, nn.Conv2d), 3: (tnn.Conv3d, nn.Conv3d)}
PADDING_MODES = ["zeros", "reflect", "replicate", "circular"]
ATTRIBUTES = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
              "groups", "padding_mode", "transposed", "output_padding",
              "_reversed_padding_repeated_twice"]


def _input(dims, batch=2, channels=4, size=7, dtype=torch.float32):
    return torch.randn(batch, channels, *[size + i for i in range(dims)], dtype=dtype)


@pytest.mark.parametrize("dims", DIMS)
def test_constructor_signature_is_torch_signature(dims):
    """torch's parameters, then one keyword-only ``method`` (the engine)."""
    ours, theirs = (dict(inspect.signature(c.__init__).parameters) for c in CLASSES[dims])
    method = ours.pop("method")
    assert method.kind is inspect.Parameter.KEYWORD_ONLY and method.default == "auto"
    assert list(ours) == list(theirs)
    assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]


@pytest.mark.parametrize("dims", DIMS)
def test_not_a_torch_conv_subclass(dims):
    """Tools that rewrite torch.nn.ConvNd (fusion, quantization) must not
    mistake true convolution for cross-correlation."""
    ours, theirs = CLASSES[dims]
    assert not issubclass(ours, theirs)
    assert issubclass(ours, nn.modules.conv._ConvNd)


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(stride=2, padding=1, dilation=2, groups=2, bias=False),
    dict(padding="same", padding_mode="reflect"),
    dict(padding="valid", padding_mode="circular"),
    dict(padding=(1, 2, 1), padding_mode="replicate"),
], ids=["defaults", "hyper", "same-reflect", "valid-circular", "tuple-replicate"])
def test_attributes_initialisation_and_state_dict_match_torch(dims, kwargs):
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("padding"), tuple):
        kwargs["padding"] = kwargs["padding"][:dims]
    ours_cls, torch_cls = CLASSES[dims]
    torch.manual_seed(1)
    ours = ours_cls(4, 6, 3, **kwargs)
    torch.manual_seed(1)
    theirs = torch_cls(4, 6, 3, **kwargs)
    for name in ATTRIBUTES:
        assert getattr(ours, name) == getattr(theirs, name), name
    state, torch_state = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(torch_state)
    for key in state:
        assert torch.equal(state[key], torch_state[key]), key


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("padding", ["same", "valid", 1, "tuple"])
def test_forward_is_torch_layer_with_flipped_weight(dims, padding_mode, padding):
    ours_cls, torch_cls = CLASSES[dims]
    if padding == "tuple":
        padding = (2, 1, 0)[:dims]
    kernel = (2, 3, 4)[:dims]  # an even kernel exercises asymmetric 'same'
    conv = ours_cls(4, 6, kernel, padding=padding, padding_mode=padding_mode, groups=2,
                    dilation=(1, 2, 1)[:dims]).double()
    twin = torch_cls(4, 6, kernel, padding=padding, padding_mode=padding_mode, groups=2,
                     dilation=(1, 2, 1)[:dims]).double()
    with torch.no_grad():
        twin.weight.copy_(flip_spatial(conv.weight))
        twin.bias.copy_(conv.bias)
    x = _input(dims, dtype=torch.float64)
    torch.testing.assert_close(conv(x), twin(x))
    torch.testing.assert_close(conv(x[0]), twin(x[0]))  # unbatched


@pytest.mark.parametrize("dims", DIMS)
def test_forward_computes_true_convolution_of_its_own_weight(dims):
    conv = CLASSES[dims][0](4, 6, 3, stride=2, padding=1, groups=2).double()
    x = _input(dims, dtype=torch.float64)
    torch.testing.assert_close(conv(x), torch_conv(x, conv.weight, conv.bias, 2, 1, 1, 2))


@pytest.mark.parametrize("dims", DIMS)
def test_loading_a_torch_state_dict_keeps_the_weights(dims):
    ours_cls, torch_cls = CLASSES[dims]
    theirs = torch_cls(4, 6, 3)
    ours = ours_cls(4, 6, 3)
    ours.load_state_dict(theirs.state_dict())
    assert torch.equal(ours.weight, theirs.weight)
    x = _input(dims)
    torch.testing.assert_close(ours(x), torch_conv(x, theirs.weight, theirs.bias))


@pytest.mark.parametrize("dims", DIMS)
def test_training_step_matches_torch_with_flipped_weights(dims):
    """Gradients at the layer level: one SGD step keeps the torchflip weight
    the flip of the torch weight."""
    ours_cls, torch_cls = CLASSES[dims]
    theirs = torch_cls(4, 6, 3, padding="same", groups=2).double()
    ours = ours_cls.from_torch(theirs)
    x = _input(dims, dtype=torch.float64)
    for model in (ours, theirs):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model(x).square().mean().backward()
        optimizer.step()
    torch.testing.assert_close(ours.weight, flip_spatial(theirs.weight))
    torch.testing.assert_close(ours.bias, theirs.bias)


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_from_torch_computes_the_same_function(dims, padding_mode):
    ours_cls, torch_cls = CLASSES[dims]
    theirs = torch_cls(4, 6, (3, 2, 3)[:dims], stride=1, padding="same",
                       padding_mode=padding_mode, dilation=2, groups=2)
    ours = ours_cls.from_torch(theirs)
    assert type(ours) is ours_cls
    for name in ATTRIBUTES:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert torch.equal(ours.weight, flip_spatial(theirs.weight))
    x = _input(dims)
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("dims", DIMS)
def test_from_torch_without_flip_keeps_the_weights(dims):
    ours_cls, torch_cls = CLASSES[dims]
    theirs = torch_cls(4, 6, 3, bias=False)
    ours = ours_cls.from_torch(theirs, flip_weights=False)
    assert torch.equal(ours.weight, theirs.weight)
    assert ours.bias is None
    x = _input(dims)
    torch.testing.assert_close(ours(x), torch_conv(x, theirs.weight))


def test_from_torch_copies_dtype_requires_grad_training_mode_and_does_not_share():
    theirs = nn.Conv2d(2, 3, 3).double().eval()
    theirs.weight.requires_grad_(False)
    ours = tnn.Conv2d.from_torch(theirs)
    assert ours.weight.dtype == torch.float64 and ours.bias.dtype == torch.float64
    assert not ours.weight.requires_grad and ours.bias.requires_grad
    assert not ours.training
    with torch.no_grad():
        ours.bias.add_(1)
    assert not torch.equal(ours.bias, theirs.bias)


def test_from_torch_on_meta_device():
    theirs = nn.Conv2d(2, 3, 3, device="meta")
    ours = tnn.Conv2d.from_torch(theirs)
    assert ours.weight.device.type == "meta"


@pytest.mark.parametrize("dims", DIMS)
def test_to_torch_round_trip_is_exact(dims):
    ours_cls, torch_cls = CLASSES[dims]
    ours = ours_cls(4, 6, 3, padding=1, padding_mode="circular", groups=2)
    theirs = ours.to_torch()
    assert type(theirs) is torch_cls
    back = ours_cls.from_torch(theirs)
    assert torch.equal(back.weight, ours.weight) and torch.equal(back.bias, ours.bias)
    x = _input(dims)
    torch.testing.assert_close(theirs(x), ours(x))
    same_weights = ours.to_torch(flip_weights=False)
    assert torch.equal(same_weights.weight, ours.weight)


@pytest.mark.parametrize("source", [nn.Conv1d(2, 2, 3), nn.ConvTranspose2d(2, 2, 3),
                                    tnn.Conv2d(2, 2, 3), nn.Linear(2, 2)],
                         ids=["Conv1d", "ConvTranspose2d", "torchflip.Conv2d", "Linear"])
def test_from_torch_rejects_other_modules(source):
    with pytest.raises(TypeError, match="Conv2d.from_torch expects"):
        tnn.Conv2d.from_torch(source)


def test_repr_names_torchflip_and_keeps_torch_fields():
    ours = tnn.Conv2d(3, 8, 3, padding="same", padding_mode="reflect", bias=False)
    theirs = nn.Conv2d(3, 8, 3, padding="same", padding_mode="reflect", bias=False)
    text = repr(ours)
    assert text.startswith("torchflip.nn.Conv2d(")
    assert theirs.extra_repr() in text
    assert "true convolution" in text


@pytest.mark.parametrize("dims", DIMS)
def test_constructor_dtype_and_device(dims):
    conv = CLASSES[dims][0](2, 4, 3, dtype=torch.float64)
    assert conv.weight.dtype == torch.float64
    conv = CLASSES[dims][0](2, 4, 3, device="meta")
    assert conv.weight.device.type == "meta"
    out = conv(torch.empty(1, 2, *[5] * dims, device="meta"))
    assert out.shape == (1, 4, *[3] * dims)


def test_constructor_rejects_what_torch_rejects():
    with pytest.raises(ValueError):
        tnn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError):
        tnn.Conv2d(2, 4, 3, padding="same", stride=2)
    with pytest.raises(ValueError):
        tnn.Conv2d(2, 4, 3, padding_mode="mirror")


def test_deepcopy_is_independent_and_equal():
    conv = tnn.Conv3d(2, 4, 3)
    twin = copy.deepcopy(conv)
    assert type(twin) is tnn.Conv3d
    x = torch.randn(1, 2, 5, 5, 5)
    torch.testing.assert_close(twin(x), conv(x))
    with torch.no_grad():
        twin.weight.zero_()
    assert conv.weight.abs().sum() > 0


def _ran(call, name: str) -> bool:
    with torch.profiler.profile() as prof:
        call()
    return any(e.name == name for e in prof.events())


@pytest.mark.parametrize("dims", DIMS)
def test_pointwise_layer_trains_as_torch_layer(dims):
    """A kernel of size 1 is its own reversal, so an eager pointwise layer
    runs torch's convolution (and its autograd) instead of the operator:
    output and gradients equal torch.nn's with the same weight, and layers
    with a larger kernel still run the operator."""
    ours_cls, torch_cls = CLASSES[dims]
    theirs = torch_cls(4, 6, 1, stride=2, groups=2).double()
    ours = ours_cls.from_torch(theirs)
    torch.testing.assert_close(ours.weight, theirs.weight)
    x = _input(dims, dtype=torch.float64).requires_grad_()
    y_ours, y_theirs = ours(x), theirs(x)
    torch.testing.assert_close(y_ours, y_theirs)
    grads = [torch.autograd.grad(y.square().sum(), [x, *m.parameters()])
             for y, m in ((y_ours, ours), (y_theirs, theirs))]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradgradcheck(lambda x, w: ours._conv_forward(x, w, ours.bias),
                                        (x[:1], ours.weight))
    assert not _ran(lambda: ours(x), "torchflip::conv")
    larger = ours_cls(4, 6, 2, groups=2).double()
    assert _ran(lambda: larger(x), "torchflip::conv")


def test_pointwise_layer_rejects_bad_input_with_the_operator_message():
    layer = tnn.Conv2d(4, 6, 1)
    with pytest.raises(ValueError, match="torchflip.*C_in"):
        layer(torch.randn(1, 5, 3, 3))


@pytest.mark.parametrize("dims", DIMS)
def test_small_weight_layer_trains_as_torch_layer_with_flipped_weight(dims, monkeypatch):
    """A weight far smaller than its input (SMALL_WEIGHT_RATIO, lowered to 1
    here so that gradgradcheck stays small) is reversed under torch's
    autograd and convolved by torch, as the naive flip does, instead of by
    the operator: output and gradients (first and second order) equal
    torch.nn's with the flipped weight, and a layer whose weight is larger
    than that still runs the operator."""
    monkeypatch.setattr(conv_module, "SMALL_WEIGHT_RATIO", 1)
    ours_cls, _ = CLASSES[dims]
    ours = ours_cls(2, 3, 3, padding=1, method="direct").double()
    theirs = ours.to_torch()
    x = torch.randn(1, 2, *{1: (12,), 2: (5, 6), 3: (4, 5, 5)}[dims], dtype=torch.float64,
                    requires_grad=True)
    assert ours.weight.numel() <= x.numel()
    y_ours, y_theirs = ours(x), theirs(x)
    assert ours._last_call[1] is conv_module.FLIP
    torch.testing.assert_close(y_ours, y_theirs)
    grads = [torch.autograd.grad(y.square().sum(), [x, *m.parameters()])
             for y, m in ((y_ours, ours), (y_theirs, theirs))]
    grads[1] = (grads[1][0], flip_spatial(grads[1][1]), grads[1][2])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    assert not _ran(lambda: ours(x), "torchflip::conv")
    assert torch.autograd.gradgradcheck(lambda x, w: ours._conv_forward(x, w, ours.bias),
                                        (x, ours.weight))
    larger = ours_cls(2, 3, 5, padding=2, method="direct").double()
    assert larger.weight.numel() > x.numel()
    assert _ran(lambda: larger(x), "torchflip::conv")


def test_layer_remembers_its_route_per_call_signature(monkeypatch):
    """A repeated call signature skips the argument check and the route's
    choice; any change in the signature (input shape, a layer argument,
    gradient mode, the flip cache's switch) checks and chooses again, and
    every call still computes the true convolution."""
    checks = []
    real_check = conv_module.validate_once
    monkeypatch.setattr(conv_module, "validate_once",
                        lambda *args: (checks.append(args[1].shape), real_check(*args)))
    layer = tnn.Conv2d(2, 3, 3, padding=1, method="direct")
    x = torch.randn(1, 2, 8, 8)

    def check(input, route):
        with torch.no_grad():
            torch.testing.assert_close(layer(input), layer.to_torch()(input))
        assert layer._last_call[1] is route

    check(x, conv_module.CACHED_FLIP)
    check(x, conv_module.CACHED_FLIP)
    assert len(checks) == 1
    check(torch.randn(1, 2, 9, 9), conv_module.CACHED_FLIP)
    assert len(checks) == 2
    layer.padding = (2, 2)
    check(x, conv_module.CACHED_FLIP)
    assert len(checks) == 3
    tnn.set_flip_cache_enabled(False)
    try:
        check(x, conv_module.DIRECT)
    finally:
        tnn.set_flip_cache_enabled(True)
    check(x, conv_module.CACHED_FLIP)
    with pytest.raises(ValueError, match="torchflip"):
        layer(torch.randn(1, 3, 8, 8))  # a new signature is checked again
    for copied in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert "_last_call" not in copied.__dict__  # a copy remembers nothing
        with torch.no_grad():
            torch.testing.assert_close(copied(x), layer(x))
