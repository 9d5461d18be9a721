"""A ResNet-18-style image classifier whose convolution class is a parameter.

Built once with ``torchflip.nn.Conv2d`` and converted with
:func:`torchflip.revert`, the two models compute the same function with
true convolution and with torch.nn's cross-correlation, so timing them side by
side isolates what torchflip's layers cost inside a real network.

The architecture is ResNet-18's (He et al., 2016): a 7x7/2 stem, a 3x3/2 max
pool, four stages of two BasicBlocks (two 3x3 convolutions with batch norm and
ReLU, and a 1x1 projection where the shape changes) of widths 64, 128, 256 and
512, global average pooling and a linear classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class BasicBlock(nn.Module):
    """relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x)); the first
    convolution carries the stride."""

    def __init__(self, conv2d: type[nn.Module], in_channels: int, out_channels: int,
                 stride: int) -> None:
        super().__init__()
        self.conv1 = conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetStyle(nn.Module):
    """ResNet with BasicBlocks; ``blocks=(2, 2, 2, 2)`` is ResNet-18."""

    def __init__(self, conv2d: type[nn.Module], blocks: Sequence[int] = (2, 2, 2, 2),
                 num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        stages = []
        in_channels = 64
        for index, (width, count) in enumerate(zip((64, 128, 256, 512), blocks)):
            for block in range(count):
                stride = 2 if index > 0 and block == 0 else 1
                stages.append(BasicBlock(conv2d, in_channels, width, stride))
                in_channels = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(in_channels, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))
