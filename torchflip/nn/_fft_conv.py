r"""The FFT engine of the true-convolution layers, and the choice between it
and the direct operator.

By the convolution theorem, a true convolution is a product of spectra; no
flip is needed. For input :math:`x` of shape :math:`(N, C, *S)` zero-padded
to :math:`*S_p`, and weight :math:`w` of shape :math:`(O, C/g, *K)` (dilated
by inserting zeros), with transform lengths :math:`n_i \ge S_{p,i}`:

.. math::
    Y[n, o] = \sum_{c \in \gamma(o)} \mathcal{F}(x_p)[n, c] \, \mathcal{F}(w)[o, c],
    \qquad y = \mathcal{F}^{-1}(Y)[\ldots, K_i - 1 : S_{p,i}]

The window :math:`[K_i - 1, S_{p,i})` of the cyclic convolution is free of
wrap-around as soon as :math:`n_i \ge S_{p,i}`; :math:`n_i` is the next
5-smooth length. Channels are mixed in the frequency domain (one complex
multiply-add per frequency, input and output channel), so each input and
output map is transformed once. Real inputs use rfftn/irfftn. Gradients come
from the autograd formulas of torch.fft and einsum, which are FFTs and
spectral products again: the backward pass never falls back to a direct
convolution. Stride 1 only.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

from torchflip.signal._fast_len import next_fast_len

METHODS = ("auto", "direct", "fft")

# Cost model, fitted on the 2-core development CPU (torch 2.13, float32, one
# call each of forward and backward; benchmarks/run.py --suite large checks
# the choice): seconds per multiply-add of the direct convolution, per
# (point x log2 points) of a real FFT, and per complex multiply-add of the
# spectral product.
_DIRECT_MAC = 2.5e-11
_FFT_POINT_LOG = 1.6e-9
_SPECTRAL_MAC = 1.1e-9
# Direct wins near the crossover anyway (exact, no extra memory): FFT must be
# predicted this much faster to be chosen.
_FFT_MARGIN = 1.5


def check_method(method: str, op: str) -> None:
    if method not in METHODS:
        raise ValueError(f"{op}: expected 'method' to be one of {METHODS}, but got {method!r}")


def _transform_lengths(spatial: Sequence[int], padding: Sequence[int]) -> list[int]:
    return [next_fast_len(s + 2 * p) for s, p in zip(spatial, padding)]


def predicted_costs(input_shape: Sequence[int], weight_shape: Sequence[int],
                    padding: Sequence[int], dilation: Sequence[int],
                    groups: int) -> tuple[float, float]:
    """(direct, fft) predicted seconds for one forward call, stride 1."""
    n, c = input_shape[0], input_shape[1]
    o, cg = weight_shape[0], weight_shape[1]
    spatial, kernel = input_shape[2:], weight_shape[2:]
    out = [s + 2 * p - d * (k - 1) for s, p, d, k in zip(spatial, padding, dilation, kernel)]
    if min(out) <= 0:
        return 0.0, math.inf
    direct = _DIRECT_MAC * n * o * cg * math.prod(kernel) * math.prod(out)
    lengths = _transform_lengths(spatial, padding)
    points = math.prod(lengths)
    freqs = points // lengths[-1] * (lengths[-1] // 2 + 1)
    transforms = n * c + o * cg + n * o  # input, weight and output maps
    fft = (_FFT_POINT_LOG * transforms * points * math.log2(max(points, 2))
           + _SPECTRAL_MAC * n * o * cg * freqs)
    return direct, fft


def choose_method(input: Tensor, weight: Tensor, stride: Sequence[int],
                  padding: Sequence[int], dilation: Sequence[int], groups: int) -> str:
    """'fft' where the cost model predicts it clearly faster, else 'direct'.

    Only stride-1 real floating-point layers are candidates. The prediction
    uses one sample (batch size 1): both engines scale with the batch, and a
    choice independent of it stays the same across batch sizes, also under
    torch.compile and torch.export with a dynamic batch dimension."""
    if any(s != 1 for s in stride) or weight.dtype not in (torch.float32, torch.float64):
        return "direct"
    if math.prod(int(k) for k in weight.shape[2:]) < 16:  # small kernels: direct wins
        return "direct"
    sample = (1, int(weight.shape[1]) * groups) + tuple(int(s) for s in input.shape[-len(stride):])
    direct, fft = predicted_costs(sample, [int(s) for s in weight.shape], padding, dilation,
                                  groups)
    return "fft" if fft * _FFT_MARGIN < direct else "direct"


def fft_conv(input: Tensor, weight: Tensor, bias: Optional[Tensor], padding: Sequence[int],
             dilation: Sequence[int], groups: int) -> Tensor:
    """True convolution with stride 1 through the FFT; arguments normalised,
    input batched (N, C, *S), padding symmetric per spatial dimension."""
    dims = weight.dim() - 2
    spatial_axes = list(range(2, 2 + dims))
    if any(d != 1 for d in dilation):
        dilated = [d * (k - 1) + 1 for d, k in zip(dilation, weight.shape[2:])]
        sparse = weight.new_zeros(weight.shape[:2] + tuple(dilated))
        sparse[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dilation)] = weight
        weight = sparse
    if any(padding):
        pad = [p for p in reversed(padding) for _ in range(2)]
        input = torch.nn.functional.pad(input, pad)
    padded = input.shape[2:]
    kernel = weight.shape[2:]
    lengths = [next_fast_len(s) for s in padded]

    x_hat = torch.fft.rfftn(input, s=lengths, dim=spatial_axes)
    w_hat = torch.fft.rfftn(weight, s=lengths, dim=spatial_axes)
    n, c = input.shape[:2]
    o = weight.shape[0]
    freq_shape = x_hat.shape[2:]
    # (N, g, C/g, F) x (g, O/g, C/g, F) -> (N, g, O/g, F): channels mix per frequency.
    x_hat = x_hat.reshape(n, groups, c // groups, -1)
    w_hat = w_hat.reshape(groups, o // groups, c // groups, -1)
    y_hat = torch.einsum("ngcf,gocf->ngof", x_hat, w_hat).reshape((n, o) + tuple(freq_shape))
    full = torch.fft.irfftn(y_hat, s=lengths, dim=spatial_axes)
    window = tuple(slice(k - 1, s) for k, s in zip(kernel, padded))
    out = full[(slice(None), slice(None)) + window]
    if bias is not None:
        out = out + bias.reshape((1, -1) + (1,) * dims)
    return out
