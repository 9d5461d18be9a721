"""Independent references for true convolution, used by every test.

Two kinds, deliberately built on different code:

* ``torch_conv`` / ``torch_conv_transpose``: torch.nn.functional with the
  kernel flipped along every spatial dimension. This is the project's
  definition of true convolution (cross-correlation with the flipped kernel).
* ``numpy_conv`` / ``numpy_conv_transpose``: the defining sums written out in
  numpy, sharing no code with torch's convolution kernels,

      conv:            y[n, o, i] = b[o] + sum_{c in group(o), k} x_p[n, c, s*i + d*k] w[o, c, K-1-k]
      conv_transpose:  the adjoint of conv in (x -> y), with weight (C_in, C_out / groups, *K),

  evaluated per spatial dimension with stride s, dilation d and zero padding p.
"""

from __future__ import annotations

import itertools
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_TORCH_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def spatial_dims(t: Tensor) -> list[int]:
    """Dimensions 2.. of an (N, C, *spatial) tensor or a convolution weight."""
    return list(range(2, t.dim()))


def flip_spatial(weight: Tensor) -> Tensor:
    return weight.flip(spatial_dims(weight))


def torch_conv(x: Tensor, w: Tensor, b: Optional[Tensor] = None, stride=1, padding=0,
               dilation=1, groups: int = 1) -> Tensor:
    """True convolution as torch.nn.functional.convNd with the flipped kernel."""
    return _TORCH_CONV[w.dim() - 2](x, flip_spatial(w), b, stride, padding, dilation, groups)


def torch_conv_transpose(x: Tensor, w: Tensor, b: Optional[Tensor] = None, stride=1,
                         padding=0, output_padding=0, groups: int = 1,
                         dilation=1) -> Tensor:
    """Transposed true convolution as torch.nn.functional.conv_transposeNd with
    the flipped kernel."""
    return _TORCH_CONV_TRANSPOSE[w.dim() - 2](x, flip_spatial(w), b, stride, padding,
                                              output_padding, groups, dilation)


def _per_dim(value, dims: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    value = tuple(value)
    return value * dims if len(value) == 1 else value


def numpy_conv(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray] = None,
               stride: Sequence[int] | int = 1, padding: Sequence[int] | int = 0,
               dilation: Sequence[int] | int = 1, groups: int = 1) -> np.ndarray:
    """True convolution from its defining sum; x (N, C_in, *S), w (C_out, C_in/g, *K)."""
    dims = w.ndim - 2
    s, p, d = (_per_dim(v, dims) for v in (stride, padding, dilation))
    kernel = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pi, pi) for pi in p])
    out_size = [(xp.shape[2 + i] - d[i] * (kernel[i] - 1) - 1) // s[i] + 1 for i in range(dims)]
    c_out = w.shape[0]
    cin_g, cout_g = x.shape[1] // groups, c_out // groups
    y = np.zeros((x.shape[0], c_out, *out_size), dtype=np.float64)
    for k in itertools.product(*(range(kk) for kk in kernel)):
        # x_p[s*i + d*k] for every output position i, as one strided slice.
        window = tuple(slice(d[j] * k[j], d[j] * k[j] + s[j] * (out_size[j] - 1) + 1, s[j])
                       for j in range(dims))
        xs = xp[(slice(None), slice(None)) + window]
        tap = w[(slice(None), slice(None)) + tuple(kernel[j] - 1 - k[j] for j in range(dims))]
        for g in range(groups):
            y[:, g * cout_g:(g + 1) * cout_g] += np.einsum(
                "nc...,oc->no...", xs[:, g * cin_g:(g + 1) * cin_g],
                tap[g * cout_g:(g + 1) * cout_g])
    if b is not None:
        y += b.reshape((1, -1) + (1,) * dims)
    return y


def numpy_conv_transpose(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray] = None,
                         stride: Sequence[int] | int = 1, padding: Sequence[int] | int = 0,
                         output_padding: Sequence[int] | int = 0, groups: int = 1,
                         dilation: Sequence[int] | int = 1) -> np.ndarray:
    """Adjoint of :func:`numpy_conv` by scattering; x (N, C_in, *S),
    w (C_in, C_out/g, *K). Each input sample x[i] adds x[i] * w[K-1-k] at
    position s*i + d*k of the full output, which is then cropped by the
    padding (and extended by output_padding at the end)."""
    dims = w.ndim - 2
    s, p, op, d = (_per_dim(v, dims) for v in (stride, padding, output_padding, dilation))
    kernel = w.shape[2:]
    in_size = x.shape[2:]
    full = [(in_size[i] - 1) * s[i] + d[i] * (kernel[i] - 1) + 1 + op[i] for i in range(dims)]
    cin_g, cout_g = x.shape[1] // groups, w.shape[1]
    y = np.zeros((x.shape[0], cout_g * groups, *full), dtype=np.float64)
    for k in itertools.product(*(range(kk) for kk in kernel)):
        window = tuple(slice(d[j] * k[j], d[j] * k[j] + s[j] * (in_size[j] - 1) + 1, s[j])
                       for j in range(dims))
        tap = w[(slice(None), slice(None)) + tuple(kernel[j] - 1 - k[j] for j in range(dims))]
        for g in range(groups):
            y[(slice(None), slice(g * cout_g, (g + 1) * cout_g)) + window] += np.einsum(
                "nc...,co->no...", x[:, g * cin_g:(g + 1) * cin_g],
                tap[g * cin_g:(g + 1) * cin_g])
    y = y[(slice(None), slice(None)) + tuple(slice(p[i], full[i] - p[i]) for i in range(dims))]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * dims)
    return y


def to_numpy(t: Optional[Tensor]) -> Optional[np.ndarray]:
    return None if t is None else t.detach().to(torch.float64).numpy()
