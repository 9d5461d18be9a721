"""Layers always convolve with their current weight, however it changed.

Without a gradient for the weight (inference, torch.no_grad, a frozen layer)
the layers may reuse a flipped copy of the weight, or on the FFT engine its
spectrum; every way of changing the weight in place must still be seen by
the next call. Each check compares
with the functional reference on the weight as it is now."""

import pytest
import torch

import torchflip.nn as tnn
from tests.reference import torch_conv, torch_conv_transpose


def _layer(kind):
    if kind == "conv":
        return tnn.Conv2d(2, 4, 3, padding=1).eval(), torch.randn(1, 2, 6, 6)
    if kind == "conv_fft":
        return tnn.Conv2d(2, 4, 3, padding=1, method="fft").eval(), torch.randn(1, 2, 6, 6)
    return tnn.ConvTranspose2d(2, 4, 3, stride=2).eval(), torch.randn(1, 2, 4, 4)


def _expected(layer, x):
    with torch.no_grad():
        if layer.transposed:
            return torch_conv_transpose(x, layer.weight, layer.bias, layer.stride, layer.padding,
                                        layer.output_padding, layer.groups, layer.dilation)
        return torch_conv(x, layer.weight, layer.bias, layer.stride, layer.padding,
                          layer.dilation, layer.groups)


def _assert_matches(kind, actual, expected):
    """torch.testing's float32 tolerances, except that the FFT engine's error
    is relative to the largest magnitude (a transform spreads each term's
    rounding over the whole map), so an entry much smaller than its
    neighbours is held to that scale. A stale weight misses by far more."""
    atol = 1e-5
    if kind == "conv_fft":
        atol = max(atol, 1e-6 * float(expected.abs().max()))
    torch.testing.assert_close(actual, expected, rtol=1.3e-6, atol=atol)


def _scale_in_place(layer):
    layer.weight.mul_(2)


def _scale_through_data(layer):
    layer.weight.data.mul_(2)


def _copy_through_data(layer):
    layer.weight.data.copy_(torch.randn_like(layer.weight))


def _assign_data(layer):
    layer.weight.data = torch.randn_like(layer.weight)


def _edit_through_numpy(layer):
    layer.weight.detach().numpy()[...] *= 2


def _load_state_dict(layer):
    state = {k: torch.randn_like(v) for k, v in layer.state_dict().items()}
    layer.load_state_dict(state)


def _init(layer):
    torch.nn.init.normal_(layer.weight)


def _zero_one_tap(layer):
    layer.weight[:, :, 0, 0] = 0


KINDS = ["conv", "conv_fft", "conv_transpose"]
EDITS = [_scale_in_place, _scale_through_data, _copy_through_data, _assign_data,
         _edit_through_numpy, _load_state_dict, _init, _zero_one_tap]


@pytest.mark.parametrize("edit", EDITS, ids=[e.__name__.lstrip("_") for e in EDITS])
@pytest.mark.parametrize("kind", KINDS)
def test_in_place_weight_changes_are_seen_without_grad(kind, edit):
    layer, x = _layer(kind)
    with torch.no_grad():
        before = layer(x)
        edit(layer)
        after = layer(x)
    torch.testing.assert_close(after, _expected(layer, x))
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("edit", EDITS, ids=[e.__name__.lstrip("_") for e in EDITS])
@pytest.mark.parametrize("kind", KINDS)
def test_frozen_layer_sees_weight_changes_and_passes_input_gradients(kind, edit):
    layer, x = _layer(kind)
    layer.weight.requires_grad_(False)
    x.requires_grad_()
    layer(x).sum().backward()
    with torch.no_grad():
        edit(layer)
    layer.weight.requires_grad_(False)  # load_state_dict and .data keep it; be explicit
    x.grad = None
    out = layer(x)
    out.square().sum().backward()
    x_ref = x.detach().requires_grad_()
    expected = torch_conv_transpose if kind == "conv_transpose" else torch_conv
    kwargs = dict(stride=layer.stride) if kind == "conv_transpose" else dict(padding=1)
    ref = expected(x_ref, layer.weight, layer.bias, **kwargs)
    ref.square().sum().backward()
    _assert_matches(kind, out, ref)
    _assert_matches(kind, x.grad, x_ref.grad)


@pytest.mark.parametrize("kind", KINDS)
def test_optimizer_steps_between_inference_calls(kind):
    layer, x = _layer(kind)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    for _ in range(3):
        with torch.no_grad():
            torch.testing.assert_close(layer(x), _expected(layer, x))
        optimizer.zero_grad()
        layer(x).square().mean().backward()
        optimizer.step()
    with torch.no_grad():
        torch.testing.assert_close(layer(x), _expected(layer, x))


@pytest.mark.parametrize("kind", KINDS)
def test_dtype_change_is_seen(kind):
    layer, x = _layer(kind)
    with torch.no_grad():
        layer(x)
        layer.double()
        out = layer(x.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, _expected(layer, x.double()))


@pytest.mark.parametrize("kind", KINDS)
def test_inference_mode_matches_grad_mode(kind):
    layer, x = _layer(kind)
    with torch.inference_mode():
        inference = layer(x)
    torch.testing.assert_close(inference, layer(x).detach())


def _flips(call) -> int:
    """How many times aten::flip ran during call()."""
    with torch.profiler.profile() as prof:
        call()
    return sum(1 for e in prof.events() if e.name == "aten::flip")


@pytest.mark.parametrize("kind", ["conv", "conv_transpose"])
def test_unchanged_weight_is_flipped_once(kind):
    """Guards the tests above against a cache that never hits: they would
    pass with no cache at all. Repeated inference calls reuse the flip, and
    an edit makes exactly the next call flip again."""
    layer, x = _layer(kind)
    with torch.no_grad():
        assert _flips(lambda: layer(x)) >= 1  # the cache, and the argument check's probe
        assert _flips(lambda: [layer(x) for _ in range(3)]) == 0
        layer.weight.mul_(2)
        assert _flips(lambda: [layer(x) for _ in range(3)]) == 1
        torch.testing.assert_close(layer(x), _expected(layer, x))


def _weight_transforms(call, weight) -> int:
    """How many real FFTs of ``weight`` (operands ending in its shape without
    the output channels) ran during call()."""
    with torch.profiler.profile(record_shapes=True) as prof:
        call()
    tail = tuple(weight.shape[1:])
    return sum(1 for e in prof.events() if e.name in ("aten::fft_rfft", "aten::fft_rfftn")
               and e.input_shapes and tuple(e.input_shapes[0][-len(tail):]) == tail)


def test_unchanged_weight_is_transformed_once():
    """The FFT engine's kept spectrum, as test_unchanged_weight_is_flipped_once
    for the flip: repeated inference calls reuse it, an edit makes exactly
    the next call transform the weight again, and with a gradient for the
    weight every call transforms it."""
    layer, x = _layer("conv_fft")
    with torch.no_grad():
        assert _weight_transforms(lambda: layer(x), layer.weight) == 1
        assert _weight_transforms(lambda: [layer(x) for _ in range(3)], layer.weight) == 0
        layer.weight.mul_(2)
        assert _weight_transforms(lambda: [layer(x) for _ in range(3)], layer.weight) == 1
        torch.testing.assert_close(layer(x), _expected(layer, x))
    assert _weight_transforms(lambda: [layer(x) for _ in range(2)], layer.weight) == 2


def test_spectra_over_the_limit_are_transformed_every_call(monkeypatch):
    from torchflip.nn import _flip_cache

    monkeypatch.setattr(_flip_cache, "SPECTRA_MAX_BYTES", 100)
    monkeypatch.setattr(_flip_cache, "SPECTRA_WEIGHT_MULTIPLE", 0)
    layer, x = _layer("conv_fft")
    with torch.no_grad():
        assert _weight_transforms(lambda: [layer(x) for _ in range(3)], layer.weight) == 3
        torch.testing.assert_close(layer(x), _expected(layer, x))


def test_spectra_limit_grows_with_the_weight_up_to_its_ceiling(monkeypatch):
    """A large weight may keep spectra past SPECTRA_MAX_BYTES, up to
    SPECTRA_WEIGHT_MULTIPLE times its bytes and never above the ceiling."""
    from torchflip.nn import _flip_cache

    layer, x = _layer("conv_fft")
    monkeypatch.setattr(_flip_cache, "SPECTRA_MAX_BYTES", 100)
    monkeypatch.setattr(_flip_cache, "SPECTRA_WEIGHT_MULTIPLE", 1000)
    with torch.no_grad():
        assert _weight_transforms(lambda: [layer(x) for _ in range(3)], layer.weight) == 1
        torch.testing.assert_close(layer(x), _expected(layer, x))
        monkeypatch.setattr(_flip_cache, "SPECTRA_CEILING_BYTES", 200)
        layer.clear_flip_cache()
        assert _weight_transforms(lambda: [layer(x) for _ in range(3)], layer.weight) == 3
        torch.testing.assert_close(layer(x), _expected(layer, x))


def test_frozen_fft_layer_differentiates_its_input_twice():
    """A frozen weight's kept spectrum carries no gradient, and needs none:
    gradients of the input, of first and second order, are the reference's."""
    layer = tnn.Conv1d(2, 3, 9, padding=4, method="fft").double()
    layer.weight.requires_grad_(False)
    x = torch.randn(2, 2, 30, dtype=torch.float64, requires_grad=True)
    layer(x)  # keeps the spectrum
    assert torch.autograd.gradcheck(layer, (x,))
    assert torch.autograd.gradgradcheck(layer, (x,))
    assert _weight_transforms(lambda: layer(x).sum().backward(), layer.weight) == 0
    layer.weight.requires_grad_(True)
    assert _weight_transforms(lambda: layer(x).sum().backward(), layer.weight) == 2


def test_spectra_of_the_latest_input_sizes_are_kept(monkeypatch):
    # Room for about two sizes' spectra: a third size evicts the oldest.
    from torchflip.nn import _flip_cache

    from torchflip.nn import _fft_conv

    layer = tnn.Conv1d(1, 2, 9, padding=4, method="fft").eval()
    sizes = [100, 120, 140]
    lengths = [_fft_conv.transform_lengths([n], [4], [9])[0] for n in sizes]
    nbytes = [2 * (n // 2 + 1) * 8 for n in lengths]  # two complex64 spectra
    monkeypatch.setattr(_flip_cache, "SPECTRA_MAX_BYTES", nbytes[1] + nbytes[2] + 100)
    monkeypatch.setattr(_flip_cache, "SPECTRA_WEIGHT_MULTIPLE", 0)
    inputs = [torch.randn(1, 1, n) for n in sizes]
    with torch.no_grad():
        for x in inputs:
            layer(x)
        assert _weight_transforms(lambda: layer(inputs[2]), layer.weight) == 0
        assert _weight_transforms(lambda: layer(inputs[1]), layer.weight) == 0
        assert _weight_transforms(lambda: layer(inputs[0]), layer.weight) == 1
        for x in inputs:
            torch.testing.assert_close(layer(x), _expected(layer, x))


@pytest.mark.parametrize("kind", KINDS)
def test_values_cached_in_inference_mode_serve_calls_that_track_gradients(kind):
    """A frozen layer first called under torch.inference_mode, then with an
    input that needs a gradient: its cached flip or spectrum must not be an
    inference tensor, which autograd cannot save for the backward pass."""
    layer, x = _layer(kind)
    layer.weight.requires_grad_(False)
    with torch.inference_mode():
        layer(x)
    x = x.clone().requires_grad_()
    out = layer(x)
    grad, = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    x_ref = x.detach().requires_grad_()
    expected = torch_conv_transpose if kind == "conv_transpose" else torch_conv
    kwargs = dict(stride=layer.stride) if kind == "conv_transpose" else dict(padding=1)
    ref = expected(x_ref, layer.weight, layer.bias, **kwargs)
    grad_ref, = torch.autograd.grad(ref.square().sum(), x_ref, create_graph=True)
    _assert_matches(kind, grad, grad_ref)
    grad.sum().backward()
    grad_ref.sum().backward()
    _assert_matches(kind, x.grad, x_ref.grad)


@pytest.mark.parametrize("form", ["non_contiguous", "complex128", "float16"])
def test_edits_through_data_are_seen_whatever_the_weight_layout(form):
    """The sampled elements that catch edits through .data are read from
    memory for contiguous CPU weights of 1 to 8 bytes an element, and
    through a strided view otherwise (here: a permuted weight, 16-byte
    complex elements); a 2-byte dtype takes the first way."""
    layer = tnn.Conv2d(2, 4, 3, padding=1).eval()
    x = torch.randn(1, 2, 6, 6)
    if form == "non_contiguous":
        layer.weight = torch.nn.Parameter(torch.randn(3, 3, 2, 4).permute(3, 2, 0, 1))
        assert not layer.weight.is_contiguous()
    else:
        dtype = getattr(torch, form)
        layer.to(dtype)
        x = x.to(dtype)
    with torch.no_grad():
        layer(x)
        layer.weight.data.mul_(2)
        tol = 2e-3 if form == "float16" else 1e-5
        torch.testing.assert_close(layer(x), _expected(layer, x), rtol=tol, atol=tol)
        layer.weight.data.copy_(torch.randn_like(layer.weight))
        torch.testing.assert_close(layer(x), _expected(layer, x), rtol=tol, atol=tol)
