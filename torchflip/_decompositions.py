"""Decompositions of the public operators into core ATen: a flip and a
convolution for ``conv``/``conv_transpose``, FFTs and a spectral product for
``fft_conv``/``_fft_conv``.

For graph consumers without a kernel for torch.ops.torchflip.*: lowered to
core ATen, an exported program goes to ONNX with standard operators only (no
custom domain): ``Conv``/``ConvTranspose`` fed by the spatially reversed
weight, and ``DFT`` for the FFT convolutions of :mod:`torchflip.signal`::

    table = torch.export.default_decompositions()
    table.update(torchflip.decompositions())
    program = torch.export.export(model, args).run_decompositions(table)
    onnx_program = torch.onnx.export(program, dynamo=True)

They are deliberately not registered in torch._decomp's global table:
Inductor refuses (when the CI environment variable is set) to fall back to an
operator that has a global decomposition, which would break torch.compile and
AOTInductor of torchflip models in users' CI jobs. Eager execution,
torch.compile and torch.export keep the compiled operators.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

aten = torch.ops.aten


def flip_spatial(weight: torch.Tensor) -> torch.Tensor:
    return aten.flip.default(weight, list(range(2, weight.dim())))


def conv(input, weight, bias, stride, padding, dilation, groups):
    return aten.convolution.default(input, flip_spatial(weight), bias, stride, padding,
                                    dilation, False, [0] * (weight.dim() - 2), groups)


def conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation):
    return aten.convolution.default(input, flip_spatial(weight), bias, stride, padding,
                                    dilation, True, output_padding, groups)


def _pad(t: torch.Tensor, pads: list) -> torch.Tensor:
    """constant_pad_nd with zeros; ``pads`` lists (before, after) pairs from the
    last dimension. A complex tensor is padded through its real view (a
    trailing dimension of 2 that stays unpadded): the ONNX exporter translates
    padding of real tensors only, but complex views both ways."""
    if t.is_complex():
        padded = aten.constant_pad_nd.default(torch.view_as_real(t), [0, 0] + pads, 0.0)
        return torch.view_as_complex(padded)
    return aten.constant_pad_nd.default(t, pads, 0.0)


def _resize(t: torch.Tensor, axes: Sequence[int], sizes: Sequence[int]) -> torch.Tensor:
    """Zero-pads or truncates ``t`` to ``sizes`` along ``axes``, as the ``s``
    argument of torch.fft.fftn/rfftn does, but with the padding done by
    :func:`_pad` so that complex inputs stay exportable."""
    pads = [0] * (2 * t.dim())
    for axis, size in zip(axes, sizes):
        if t.shape[axis] > size:
            t = t.narrow(axis, 0, size)
        else:
            pads[2 * (t.dim() - 1 - axis) + 1] = size - t.shape[axis]
    return _pad(t, pads) if any(pads) else t


def fft_conv(in1, in2, axes, start, length, fft_shape):
    """``torch.ops.torchflip.fft_conv`` (csrc/fft_conv.cpp) in core ATen.

    Along each axis ``d = axes[i]`` (negative values wrap), the cyclic
    convolution of period ``fft_shape[i]`` (the inverse transform of the
    product of the spectra: rfftn/irfftn for float inputs, fftn/ifftn for
    complex ones, over ``axes`` in the given order), cut to the samples
    ``[lo, hi)`` of the window ``[start[i], start[i] + length[i])`` that lie in
    the support ``[0, n1 + n2 - 1)`` of the linear convolution, and
    zero-padded back to ``length[i]`` samples. Other dimensions broadcast;
    no ``axes`` means the broadcast product ``in1 * in2``.

    The arguments are assumed valid: the operator's checks (dtypes, shapes,
    alias-free ``fft_shape``) already ran on the example inputs when the
    program was exported. The operator's stacked single-transform path for
    one real axis is the same arithmetic, so only rounding can differ.
    """
    ndim = in1.dim()
    axes = [a + ndim if a < 0 else a for a in axes]
    if not axes:
        return in1 * in2
    a, b = _resize(in1, axes, fft_shape), _resize(in2, axes, fft_shape)
    if in1.is_complex():
        spectrum = torch.fft.fftn(a, dim=axes) * torch.fft.fftn(b, dim=axes)
        cyclic = torch.fft.ifftn(spectrum, dim=axes)
    else:
        spectrum = torch.fft.rfftn(a, dim=axes) * torch.fft.rfftn(b, dim=axes)
        # s fixes the length of the last (one-sided) axis, which the spectrum
        # alone leaves ambiguous (n // 2 + 1 bins for n and n + 1 samples).
        cyclic = torch.fft.irfftn(spectrum, s=list(fft_shape), dim=axes)

    pads = [0] * (2 * ndim)
    for axis, s, n in zip(axes, start, length):
        full = in1.shape[axis] + in2.shape[axis] - 1
        lo, hi = max(s, 0), min(s + n, full)
        if lo < hi:
            cyclic = cyclic.narrow(axis, lo, hi - lo)
            before, after = lo - s, s + n - hi
        else:  # the window misses the support: all zeros
            cyclic = cyclic.narrow(axis, 0, 0)
            before, after = n, 0
        pads[2 * (ndim - 1 - axis)] = before
        pads[2 * (ndim - 1 - axis) + 1] = after
    return _pad(cyclic, pads) if any(pads) else cyclic


def decompositions() -> dict:
    """{operator overload: decomposition} for every public torchflip operator,
    to merge into a table for ExportedProgram.run_decompositions.

    ``conv``/``conv_transpose`` become ``aten.convolution`` of the spatially
    flipped weight; ``fft_conv`` and its gradient-free twin ``_fft_conv`` (the
    FFT engine of :mod:`torchflip.signal`) become ``aten._fft_r2c``/
    ``_fft_c2r`` (float) or ``aten._fft_c2c`` (complex), a product of spectra,
    slices and zero padding."""
    return {torch.ops.torchflip.conv.default: conv,
            torch.ops.torchflip.conv_transpose.default: conv_transpose,
            torch.ops.torchflip.fft_conv.default: fft_conv,
            torch.ops.torchflip._fft_conv.default: fft_conv}
