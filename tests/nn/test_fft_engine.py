"""The FFT engine of the layers (method='fft'/'auto') against the reference
(torch.nn.functional with the flipped weight): values, gradients (gradcheck,
float64) and the engine choice."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import torchflip.nn as tnn
import torchflip.nn.functional as TF
from torchflip.nn import _fft_conv

CONV = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _flip(w):
    return w.flip(list(range(2, w.dim())))


CASES = [
    # dims, N, C_in, C_out, spatial, kernel, padding, dilation, groups
    (1, 2, 3, 4, 40, 9, 0, 1, 1),
    (1, 1, 4, 4, 64, 17, 8, 2, 4),
    (1, 3, 6, 3, 50, 16, "same", 1, 3),
    (2, 2, 3, 5, 12, 5, 2, 1, 1),
    (2, 1, 4, 4, 16, 7, "same", 2, 4),
    (2, 2, 4, 6, 11, 4, "valid", 1, 2),
    (2, 0, 2, 2, 9, 3, 1, 1, 1),
    (3, 1, 2, 3, 7, 3, 1, 1, 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fft_matches_reference(case, dtype):
    dims, n, cin, cout, size, k, padding, dilation, groups = case
    x = torch.randn((n, cin) + (size,) * dims, dtype=dtype, requires_grad=True)
    w = torch.randn((cout, cin // groups) + (k,) * dims, dtype=dtype, requires_grad=True)
    b = torch.randn(cout, dtype=dtype, requires_grad=True)
    out = CONV[dims](x, w, b, 1, padding, dilation, groups, method="fft")
    ref = TORCH_CONV[dims](x, _flip(w), b, 1, padding, dilation, groups)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out, ref, **tol)
    g = torch.randn_like(ref)
    grads = torch.autograd.grad(out, (x, w, b), g)
    ref_grads = torch.autograd.grad(ref, (x, w, b), g)
    for a, r in zip(grads, ref_grads):
        torch.testing.assert_close(a, r, **tol)


@pytest.mark.parametrize("dims", [1, 2])
def test_fft_gradcheck_and_gradgradcheck(dims):
    x = torch.randn((2, 4) + (9,) * dims, dtype=torch.float64, requires_grad=True)
    w = torch.randn((2, 2) + (4,) * dims, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)

    def f(x, w, b):
        return CONV[dims](x, w, b, 1, 2, 1, 2, method="fft")

    assert torch.autograd.gradcheck(f, (x, w, b))
    assert torch.autograd.gradgradcheck(f, (x, w, b))


def test_fft_backward_stays_on_fft():
    """The backward of the FFT engine is FFTs and spectral products: no
    convolution (direct or torchflip) runs in it."""
    x = torch.randn(1, 2, 64, requires_grad=True)
    w = torch.randn(2, 2, 32, requires_grad=True)
    out = TF.conv1d(x, w, method="fft")
    with torch.profiler.profile() as prof:
        out.sum().backward()
    names = {e.name for e in prof.events()}
    assert not any("conv" in n.lower() for n in names), sorted(names)
    assert any("fft" in n.lower() for n in names), sorted(names)


def test_fft_rejects_stride_and_bad_method():
    x, w = torch.randn(1, 1, 20), torch.randn(1, 1, 5)
    with pytest.raises(ValueError, match="stride"):
        TF.conv1d(x, w, stride=2, method="fft")
    with pytest.raises(ValueError, match="method"):
        TF.conv1d(x, w, method="fast")
    with pytest.raises(ValueError, match="method"):
        tnn.Conv1d(1, 1, 5, method="fast")


def test_fft_path_validates_like_the_operator():
    x, w = torch.randn(1, 3, 20), torch.randn(2, 2, 5)
    with pytest.raises(ValueError, match="C_in"):
        TF.conv1d(x, w, method="fft")
    with pytest.raises(ValueError, match="kernel is larger"):
        TF.conv1d(torch.randn(1, 2, 3), w, method="fft")


def test_auto_picks_the_faster_engine_for_large_kernels():
    # A 1-D single-channel 2048-tap filter over 32k samples: the FFT is orders
    # of magnitude cheaper than the direct sum on any backend.
    _fft_conv._MEASURED.clear()
    x, w = torch.randn(1, 1, 32768), torch.randn(1, 1, 2048)
    assert _fft_conv.choose_method(x, w, (1,), (0,), (1,), 1) == "fft"
    # A 3x3 kernel never goes to the FFT.
    assert _fft_conv.choose_method(torch.randn(1, 4, 16, 16), torch.randn(4, 4, 3, 3),
                                   (1, 1), (1, 1), (1, 1), 1) == "direct"
    # Stride 2 never goes to the FFT.
    assert _fft_conv.choose_method(x, w, (2,), (0,), (1,), 1) == "direct"


@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
def test_layers_with_each_method_match_torch(method):
    layer = tnn.Conv2d(3, 4, 9, padding="same", method=method)
    ref = layer.to_torch()
    x = torch.randn(2, 3, 20, 20)
    torch.testing.assert_close(layer(x), ref(x), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), ref(x), rtol=1e-4, atol=1e-4)
    assert f"method={method!r}" in repr(layer) or method == "auto"


def test_static_model_is_used_under_compile_and_matches():
    layer = tnn.Conv1d(1, 1, 1024, padding=512)
    x = torch.randn(2, 1, 8192)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), layer.to_torch()(x), rtol=1e-4, atol=1e-4)
