"""torchflip::_reverse and _reverse_ (csrc/reverse.cpp): the reversal of
spatial dimensions that every true convolution performs, against torch.flip
on every layout the operators hand it: contiguous weights with 2 to 9 taps
(the fixed-length CPU loops), longer rows (the loop over each row; out of
place only up to 64 elements, ATen's flip beyond), weights sliced along their
input channels, channels_last, size-1 kernel dimensions, and dtypes of 1, 2,
4 and 8 bytes."""

import pytest
import torch

import torchflip  # noqa: F401  (registers torch.ops.torchflip.*)

SHAPES = [
    (6, 5, 2), (6, 5, 3), (6, 5, 9), (6, 5, 10),  # 1-D kernels on either side of 9 taps
    (4, 3, 3, 3), (4, 3, 2, 2), (4, 3, 2, 3), (4, 3, 4, 4),  # 2-D
    (3, 2, 2, 2, 2), (3, 2, 3, 3, 3),  # 3-D
    (4, 3, 3, 1), (4, 3, 1, 3), (3, 2, 3, 1, 1), (3, 2, 1, 3, 1),  # size-1 kernel dimensions
    (2, 3, 17, 19),  # an activation
    (3, 2, 64), (3, 2, 65), (3, 2, 8, 8), (3, 2, 5, 13),  # on either side of 64 elements
    (2, 3, 4, 6, 5), (2, 2, 1, 700),  # 3-D and 1-D activations
]
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int32,
          torch.int64, torch.int8]


def _spatial(t):
    """The dimensions a convolution reverses: spatial ones of size > 1."""
    return [d for d in range(2, t.dim()) if t.shape[d] > 1]


LAYOUTS = {
    "contiguous": lambda t: t,
    "input-channel half": lambda t: t.narrow(1, 0, max(1, t.shape[1] // 2)),
    "output-channel stride": lambda t: t[::2],
    "channels_last": lambda t: (t.contiguous(memory_format=torch.channels_last)
                                if t.dim() == 4 else t.transpose(0, 1)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_reverse_matches_flip(shape, dtype):
    base = (torch.randn(shape) * 50).to(dtype)
    dims = _spatial(base)
    if not dims:
        pytest.fail("every shape must have a dimension to reverse")
    expanded = base[:1].expand_as(base)  # read-only: rows share memory
    assert torch.equal(torch.ops.torchflip._reverse(expanded, dims), expanded.flip(dims))
    for name, layout in LAYOUTS.items():
        t = layout(base)
        assert torch.equal(torch.ops.torchflip._reverse(t, dims), t.flip(dims)), name
        t = layout(base.clone())
        expected = t.flip(dims)
        storage, strides = t.data_ptr(), t.stride()
        torch.ops.torchflip._reverse_(t, dims)
        assert t.data_ptr() == storage and t.stride() == strides, name
        assert torch.equal(t, expected), name


@pytest.mark.parametrize("shape", [(256, 96, 3, 3), (64, 130, 2), (48, 40, 3, 3, 3)], ids=str)
def test_reverse_split_across_threads_matches_flip(shape, threads):
    # Tensors of many ~32k-element chunks, so that with `threads` = 3
    # (conftest) parallel_for splits the rows between threads.
    base = torch.randn(shape)
    dims = _spatial(base)
    for name, layout in LAYOUTS.items():
        t = layout(base)
        assert torch.equal(torch.ops.torchflip._reverse(t, dims), t.flip(dims)), name
        t = layout(base.clone())
        expected = t.flip(dims)
        torch.ops.torchflip._reverse_(t, dims)
        assert torch.equal(t, expected), name


def test_reverse_in_place_twice_restores_the_tensor():
    w = torch.randn(64, 32, 3, 3)
    original = w.clone()
    torch.ops.torchflip._reverse_(w, [2, 3])
    assert not torch.equal(w, original)
    torch.ops.torchflip._reverse_(w, [2, 3])
    assert torch.equal(w, original)


@pytest.mark.parametrize("dims", [[1], [2, 2], [3, 2], [4], []], ids=str)
def test_reverse_rejects_dims_that_are_not_spatial(dims):
    t = torch.randn(2, 3, 4, 5)
    if not dims:
        # Nothing to reverse: a copy.
        assert torch.equal(torch.ops.torchflip._reverse(t, dims), t)
        return
    with pytest.raises(ValueError, match="'dims'"):
        torch.ops.torchflip._reverse(t, dims)


@pytest.mark.parametrize("shape", [(6, 5, 3, 3), (2, 3, 17, 19)], ids=str)
def test_reverse_opcheck(shape):
    t = torch.randn(shape)
    torch.library.opcheck(torch.ops.torchflip._reverse.default, (t, [2, 3]))
    torch.library.opcheck(torch.ops.torchflip._reverse_.default, (t.clone(), [2, 3]))
