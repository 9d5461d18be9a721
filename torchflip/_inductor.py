"""How Inductor compiles the convolution operators: as the flip and the ATen
convolution they stand for.

To Inductor, ``torchflip::conv`` is an opaque kernel: every call reverses its
operand at run time, and the convolution inside it misses what Inductor does
for ``aten.convolution`` (choosing channels_last layouts, fusing with the
pointwise operations around it). On a compiled ResNet-18 that made inference
1.13x torch.nn's. Lowered to ``aten.flip`` and ``aten.convolution`` (and the
backward operators to ``aten.convolution_backward`` between two flips), the
convolution is torch.nn's and the flips are fused pointwise kernels.

Only Inductor's own decomposition table gets these entries. The graphs that
Dynamo and torch.export produce keep ``torchflip.conv`` as one node, eager
execution keeps the C++ operators, and torch._decomp's global table stays
untouched (Inductor refuses, when the CI variable is set, to fall back to an
operator that has a global decomposition; see torchflip/_decompositions.py).

Importing Inductor costs about a second, so the entries are added lazily:
when Dynamo first traces a torchflip layer or functional (see
:func:`register_when_compiling`), or at ``import torchflip`` if Inductor is
already loaded.
"""

from __future__ import annotations

import sys

import torch

from torchflip import _decompositions

aten = torch.ops.aten
_registered = False


def _conv_backward(grad_output, input, weight, stride, padding, dilation, groups, output_mask):
    dims = weight.dim() - 2
    bias_sizes = [weight.shape[0]] if output_mask[2] else None
    grad_input, grad_weight, grad_bias = aten.convolution_backward.default(
        grad_output, input, _decompositions.flip_spatial(weight), bias_sizes, stride, padding,
        dilation, False, [0] * dims, groups, output_mask)
    if output_mask[1]:
        grad_weight = _decompositions.flip_spatial(grad_weight)
    return grad_input, grad_weight, grad_bias


def _conv_transpose_backward(grad_output, input, weight, stride, padding, output_padding,
                             groups, dilation, output_mask):
    bias_sizes = [weight.shape[1] * groups] if output_mask[2] else None
    grad_input, grad_weight, grad_bias = aten.convolution_backward.default(
        grad_output, input, _decompositions.flip_spatial(weight), bias_sizes, stride, padding,
        dilation, True, output_padding, groups, output_mask)
    if output_mask[1]:
        grad_weight = _decompositions.flip_spatial(grad_weight)
    return grad_input, grad_weight, grad_bias


def _table() -> dict:
    ops = torch.ops.torchflip
    return {ops.conv.default: _decompositions.conv,
            ops.conv_transpose.default: _decompositions.conv_transpose,
            ops.conv_backward.default: _conv_backward,
            ops.conv_transpose_backward.default: _conv_transpose_backward}


def register() -> None:
    """Adds the entries to Inductor's decomposition table (idempotent)."""
    global _registered
    if _registered:
        return
    from torch._inductor import decomposition

    table = _table()
    decomposition.decompositions.update(table)
    # select_decomp_table() serves a cached copy of the table (with the
    # random-op decompositions added) once anything has compiled.
    cached = getattr(decomposition, "fast_random_decomps", None)
    if cached is not None:
        cached().update(table)
    _registered = True


def register_if_loaded() -> None:
    """At import: register only if Inductor is loaded already."""
    if "torch._inductor.decomposition" in sys.modules:
        register()


def _register_during_trace() -> bool:
    register()
    return True


# What torch.compiler.assume_constant_result does, without its import of
# torch._dynamo (a second at `import torchflip`): Dynamo then runs the
# function at trace time instead of tracing it, and Inductor reads the table
# later, when it compiles the graph. (tests/ops/test_compile.py fails if the
# marker stops working: the registration would be traced and break the graph.)
_register_during_trace._dynamo_marked_constant = True  # type: ignore[attr-defined]


def register_when_compiling() -> None:
    """Called by the Python layer on every call: under torch.compile, makes
    sure Inductor will decompose the operators; otherwise does nothing. (No
    test of ``_registered`` here: Dynamo would guard on it and recompile
    once it changes.)"""
    if torch.compiler.is_compiling():
        _register_during_trace()
