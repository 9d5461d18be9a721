"""Decompositions of the public operators into core ATen (a flip and a
convolution).

Registered in torch._decomp's table so that graph consumers without a kernel
for torch.ops.torchflip.* can lower them: torch.onnx.export(..., dynamo=True)
then emits a standard ONNX Conv fed by the spatially reversed weight (no
custom domain). For core ATen from torch.export::

    table = torch.export.default_decompositions()
    table.update(torchflip.decompositions())
    program = program.run_decompositions(table)

Eager execution, torch.compile and torch.export keep the compiled operators.
"""

from __future__ import annotations

import torch
from torch._decomp import register_decomposition

aten = torch.ops.aten


def _flip_spatial(weight: torch.Tensor) -> torch.Tensor:
    return aten.flip.default(weight, list(range(2, weight.dim())))


@register_decomposition(torch.ops.torchflip.conv.default)
def conv(input, weight, bias, stride, padding, dilation, groups):
    return aten.convolution.default(input, _flip_spatial(weight), bias, stride, padding,
                                    dilation, False, [0] * (weight.dim() - 2), groups)


@register_decomposition(torch.ops.torchflip.conv_transpose.default)
def conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation):
    return aten.convolution.default(input, _flip_spatial(weight), bias, stride, padding,
                                    dilation, True, output_padding, groups)


def decompositions() -> dict:
    """{operator overload: decomposition} for every public torchflip operator,
    to merge into a table for ExportedProgram.run_decompositions."""
    return {torch.ops.torchflip.conv.default: conv,
            torch.ops.torchflip.conv_transpose.default: conv_transpose}
