"""Decompositions of the public operators into core ATen (a flip and a
convolution).

For graph consumers without a kernel for torch.ops.torchflip.*: lowered to
core ATen, an exported program goes to ONNX as a standard Conv fed by the
spatially reversed weight (no custom domain)::

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

import torch

aten = torch.ops.aten


def _flip_spatial(weight: torch.Tensor) -> torch.Tensor:
    return aten.flip.default(weight, list(range(2, weight.dim())))


def conv(input, weight, bias, stride, padding, dilation, groups):
    return aten.convolution.default(input, _flip_spatial(weight), bias, stride, padding,
                                    dilation, False, [0] * (weight.dim() - 2), groups)


def conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation):
    return aten.convolution.default(input, _flip_spatial(weight), bias, stride, padding,
                                    dilation, True, output_padding, groups)


def decompositions() -> dict:
    """{operator overload: decomposition} for every public torchflip operator,
    to merge into a table for ExportedProgram.run_decompositions."""
    return {torch.ops.torchflip.conv.default: conv,
            torch.ops.torchflip.conv_transpose.default: conv_transpose}
