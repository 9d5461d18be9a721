"""What torch.jit.script compiles in place of a torchflip layer.

The layers' forward goes through torchflip.nn.functional, whose argument
normalisation is plain Python that TorchScript cannot compile. Each layer's
``__prepare_scriptable__`` therefore hands torch.jit.script this twin: it
shares the layer's parameters, holds the hyper-parameters already normalised,
and calls the compiled operators directly, so a scripted model runs (and
saves and loads) wherever the torchflip library is loaded.
"""


from typing import List, Optional

import torch
from torch import Tensor, nn

from torchflip.nn._arguments import same_padding


class ScriptableConv(nn.Module):
    """TorchScript twin of torchflip.nn.Conv1d/2d/3d."""

    # Annotated here because TorchScript cannot infer the type of an empty list.
    stride: List[int]
    padding: List[int]
    dilation: List[int]
    pre_pad: List[int]

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.weight = layer.weight
        self.bias = layer.bias
        dims = layer.weight.dim() - 2
        self.dims = dims
        self.stride = list(layer.stride)
        self.dilation = list(layer.dilation)
        self.groups = layer.groups
        # Explicit input padding (padding_mode, or the extra end padding of
        # 'same' with even kernels) and the operator's symmetric padding.
        self.pad_mode = "constant"
        self.pre_pad = []
        if layer.padding_mode != "zeros":
            self.pad_mode = layer.padding_mode
            self.pre_pad = list(layer._reversed_padding_repeated_twice)
            self.padding = [0] * dims
        elif layer.padding == "same":
            padding, extra = same_padding(layer.weight, tuple(self.dilation), tuple(self.stride),
                                          type(layer).__name__)
            self.padding = list(padding)
            self.pre_pad = extra if any(extra) else []
        elif layer.padding == "valid":
            self.padding = [0] * dims
        else:
            self.padding = list(layer.padding)

    def forward(self, input: Tensor) -> Tensor:
        unbatched = input.dim() == self.dims + 1
        if unbatched:
            input = input.unsqueeze(0)
        if len(self.pre_pad) > 0:
            input = torch.nn.functional.pad(input, self.pre_pad, mode=self.pad_mode)
        out = torch.ops.torchflip.conv(input, self.weight, self.bias, self.stride, self.padding,
                                       self.dilation, self.groups)
        return out.squeeze(0) if unbatched else out


class ScriptableConvTranspose(nn.Module):
    """TorchScript twin of torchflip.nn.ConvTranspose1d/2d/3d."""

    kernel_size: List[int]
    stride: List[int]
    padding: List[int]
    output_padding: List[int]
    dilation: List[int]

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.weight = layer.weight
        self.bias = layer.bias
        self.dims = layer.weight.dim() - 2
        self.kernel_size = list(layer.kernel_size)
        self.stride = list(layer.stride)
        self.padding = list(layer.padding)
        self.output_padding = list(layer.output_padding)
        self.dilation = list(layer.dilation)
        self.groups = layer.groups

    def _output_padding(self, input: Tensor, output_size: Optional[List[int]]) -> List[int]:
        # torch.nn.ConvTranspose's rule: output_size picks, within one stride,
        # which of the possible output sizes is produced.
        if output_size is None:
            return self.output_padding
        sizes = output_size[len(output_size) - self.dims:]
        if len(sizes) != self.dims:
            raise ValueError("output_size must have as many spatial sizes as the input")
        result: List[int] = []
        for d in range(self.dims):
            smallest = ((input.size(input.dim() - self.dims + d) - 1) * self.stride[d]
                        - 2 * self.padding[d] + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            if sizes[d] < smallest or sizes[d] >= smallest + self.stride[d]:
                raise ValueError("requested output_size is not reachable with this stride")
            result.append(sizes[d] - smallest)
        return result

    def forward(self, input: Tensor, output_size: Optional[List[int]] = None) -> Tensor:
        output_padding = self._output_padding(input, output_size)
        unbatched = input.dim() == self.dims + 1
        if unbatched:
            input = input.unsqueeze(0)
        out = torch.ops.torchflip.conv_transpose(input, self.weight, self.bias, self.stride,
                                                 self.padding, output_padding, self.groups,
                                                 self.dilation)
        return out.squeeze(0) if unbatched else out
