"""The convolution layers benchmarked: shapes taken from real networks.

A :class:`LayerCase` is one convolution layer with one input shape. Each
``*_cases(quick)`` function returns a suite; ``quick=True`` gives a smaller
batch and a subset of the layers so that ``run.py --quick`` takes minutes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerCase:
    """One layer, ``ConvNd(in_channels, out_channels, kernel, stride, padding,
    dilation, groups, bias)`` applied to an input of shape
    ``(batch, in_channels, *size)``."""

    suite: str
    name: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    size: tuple[int, ...]
    batch: int
    stride: tuple[int, ...] | None = None
    padding: tuple[int, ...] | None = None
    dilation: tuple[int, ...] | None = None
    groups: int = 1
    bias: bool = False

    @property
    def dims(self) -> int:
        return len(self.kernel)

    def arguments(self) -> dict:
        """Keyword arguments of the torch.nn / torchflip.nn constructor."""
        ones, zeros = (1,) * self.dims, (0,) * self.dims
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel, "stride": self.stride or ones,
                "padding": self.padding or zeros, "dilation": self.dilation or ones,
                "groups": self.groups, "bias": self.bias}

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.in_channels, *self.size)

    @property
    def unit_stride(self) -> bool:
        return all(s == 1 for s in (self.stride or (1,)))

    def describe(self) -> str:
        """'64->64 k3x3 s1 @56x56 g1', for tables and CSV."""
        def fmt(values):
            return "x".join(map(str, values))
        text = (f"{self.in_channels}->{self.out_channels} k{fmt(self.kernel)} "
                f"s{fmt(self.stride or (1,))} @{fmt(self.size)}")
        if self.dilation and any(d != 1 for d in self.dilation):
            text += f" d{fmt(self.dilation)}"
        if self.groups != 1:
            text += f" g{self.groups}"
        return text + f" n{self.batch}"


# ResNet-50 v1.5 (torchvision.models.resnet50) at 224x224, written out by hand
# from the architecture rather than read from torchvision:
#   stem: conv 7x7/2, 3->64, pad 3, on 224x224; a 3x3/2 max pool then gives 56x56.
#   stages of widths w = 64, 128, 256, 512 with 3, 4, 6, 3 Bottleneck blocks; a
#   block is 1x1 (c_in->w), 3x3 (w->w, pad 1), 1x1 (w->4w). In v1.5 the first
#   block of stages 2-4 puts stride 2 on its 3x3 conv (v1 put it on the first
#   1x1), and its 1x1 projection shortcut (c_in->4w) has the same stride. Stage
#   1's projection is 64->256 stride 1, identical to its 1x1 (w->4w) conv.
# Deduplicating the 53 convolutions by (c_in, c_out, kernel, stride, input size)
# leaves the 23 below: the stem, 4 in stage 1, and 6 in each later stage (first
# block's 1x1 reduce, strided 3x3 and strided projection; the 1x1 expand shared
# by all blocks; later blocks' 1x1 reduce and 3x3). The often-quoted count of 20
# is ResNet-50 v1's, where the strided 1x1 reduce makes the first block's 3x3
# identical to the others. All convolutions have bias=False (batch norm follows).
# Columns: name, c_in, c_out, kernel, stride, padding, input size (square).
_RESNET50_LAYERS = [
    ("conv1", 3, 64, 7, 2, 3, 224),
    ("layer1.0.conv1", 64, 64, 1, 1, 0, 56),
    ("layer1.x.conv2", 64, 64, 3, 1, 1, 56),
    ("layer1.x.conv3+proj", 64, 256, 1, 1, 0, 56),
    ("layer1.1-2.conv1", 256, 64, 1, 1, 0, 56),
    ("layer2.0.conv1", 256, 128, 1, 1, 0, 56),
    ("layer2.0.conv2/2", 128, 128, 3, 2, 1, 56),
    ("layer2.0.proj/2", 256, 512, 1, 2, 0, 56),
    ("layer2.x.conv3", 128, 512, 1, 1, 0, 28),
    ("layer2.1-3.conv1", 512, 128, 1, 1, 0, 28),
    ("layer2.1-3.conv2", 128, 128, 3, 1, 1, 28),
    ("layer3.0.conv1", 512, 256, 1, 1, 0, 28),
    ("layer3.0.conv2/2", 256, 256, 3, 2, 1, 28),
    ("layer3.0.proj/2", 512, 1024, 1, 2, 0, 28),
    ("layer3.x.conv3", 256, 1024, 1, 1, 0, 14),
    ("layer3.1-5.conv1", 1024, 256, 1, 1, 0, 14),
    ("layer3.1-5.conv2", 256, 256, 3, 1, 1, 14),
    ("layer4.0.conv1", 1024, 512, 1, 1, 0, 14),
    ("layer4.0.conv2/2", 512, 512, 3, 2, 1, 14),
    ("layer4.0.proj/2", 1024, 2048, 1, 2, 0, 14),
    ("layer4.x.conv3", 512, 2048, 1, 1, 0, 7),
    ("layer4.1-2.conv1", 2048, 512, 1, 1, 0, 7),
    ("layer4.1-2.conv2", 512, 512, 3, 1, 1, 7),
]
_RESNET50_QUICK = {"conv1", "layer1.x.conv2", "layer2.0.conv2/2", "layer2.0.proj/2",
                   "layer3.1-5.conv1", "layer3.1-5.conv2", "layer4.x.conv3"}


def resnet50_cases(quick: bool) -> list[LayerCase]:
    """ResNet-50's distinct convolutions, batch 8 (quick: 2, 7 layers)."""
    return [LayerCase("resnet50", name, cin, cout, (k, k), (size, size), 2 if quick else 8,
                      stride=(s, s), padding=(p, p))
            for name, cin, cout, k, s, p, size in _RESNET50_LAYERS
            if not quick or name in _RESNET50_QUICK]


def conv1d_cases(quick: bool) -> list[LayerCase]:
    """Audio-like 1-D layers, batch 8 (quick: 2): wav2vec 2.0's feature
    encoder on one second at 16 kHz (strided, no bias), WaveNet's gated
    dilated convolution (kernel 2) at two dilations, a Conformer depthwise
    convolution (kernel 31 over 512 frames) and a Tacotron 2 encoder layer."""
    batch = 2 if quick else 8
    cases = [
        LayerCase("conv1d", "wav2vec2.conv0", 1, 512, (10,), (16000,), batch, stride=(5,)),
        LayerCase("conv1d", "wav2vec2.conv1", 512, 512, (3,), (3199,), batch, stride=(2,)),
        LayerCase("conv1d", "wav2vec2.conv5", 512, 512, (2,), (199,), batch, stride=(2,)),
        LayerCase("conv1d", "wavenet.d1", 64, 128, (2,), (16000,), batch, bias=True),
        LayerCase("conv1d", "wavenet.d256", 64, 128, (2,), (16000,), batch, dilation=(256,),
                  bias=True),
        LayerCase("conv1d", "conformer.dw31", 256, 256, (31,), (512,), batch, padding=(15,),
                  groups=256, bias=True),
        LayerCase("conv1d", "tacotron2.enc", 512, 512, (5,), (256,), batch, padding=(2,)),
    ]
    quick_names = {"wav2vec2.conv0", "wav2vec2.conv1", "wavenet.d256", "conformer.dw31"}
    return [c for c in cases if not quick or c.name in quick_names]


def conv3d_cases(quick: bool) -> list[LayerCase]:
    """Video-like 3-D layers on 8-frame 56x56 clips, batch 4 (quick: 1):
    R3D-18's stem and 3x3x3 convolutions (one strided), R(2+1)D's factorised
    1x3x3 spatial and 3x1x1 temporal convolutions, and X3D's channelwise
    3x3x3 convolution. No bias (batch norm follows)."""
    batch = 1 if quick else 4
    cases = [
        LayerCase("conv3d", "r3d.stem", 3, 64, (3, 7, 7), (8, 56, 56), batch,
                  stride=(1, 2, 2), padding=(1, 3, 3)),
        LayerCase("conv3d", "r3d.layer1", 64, 64, (3, 3, 3), (8, 28, 28), batch,
                  padding=(1, 1, 1)),
        LayerCase("conv3d", "r3d.layer2.0/2", 64, 128, (3, 3, 3), (8, 28, 28), batch,
                  stride=(2, 2, 2), padding=(1, 1, 1)),
        LayerCase("conv3d", "r3d.layer2", 128, 128, (3, 3, 3), (4, 14, 14), batch,
                  padding=(1, 1, 1)),
        LayerCase("conv3d", "r2+1d.spatial", 64, 144, (1, 3, 3), (8, 28, 28), batch,
                  padding=(0, 1, 1)),
        LayerCase("conv3d", "r2+1d.temporal", 144, 64, (3, 1, 1), (8, 28, 28), batch,
                  padding=(1, 0, 0)),
        LayerCase("conv3d", "x3d.channelwise", 96, 96, (3, 3, 3), (8, 28, 28), batch,
                  padding=(1, 1, 1), groups=96),
    ]
    quick_names = {"r3d.stem", "r3d.layer1", "r2+1d.spatial", "x3d.channelwise"}
    return [c for c in cases if not quick or c.name in quick_names]


def depthwise_cases(quick: bool) -> list[LayerCase]:
    """Depthwise 2-D layers with large kernels (ConvNeXt's 7x7, RepLKNet's
    13x13 and 31x31), 'same' padding, bias, at 64x64 and 128x128: 64 channels,
    batch 2 (quick: 16 channels, batch 1, three of the six)."""
    channels, batch = (16, 1) if quick else (64, 2)
    quick_shapes = {(7, 64), (13, 64), (31, 128)}
    return [LayerCase("depthwise", f"dw{k}x{k}@{size}", channels, channels, (k, k),
                      (size, size), batch, padding=(k // 2, k // 2), groups=channels, bias=True)
            for size in (64, 128) for k in (7, 13, 31)
            if not quick or (k, size) in quick_shapes]


def long1d_cases(quick: bool) -> list[LayerCase]:
    """Long 1-D filters: a bank of 4 FIR filters of 64 to 4096 taps over a mono
    signal of 16k or 64k samples, 'same'-style padding K // 2, batch 1 (quick:
    16k samples only, 64, 1024 and 4096 taps)."""
    lengths = (16384,) if quick else (16384, 65536)
    taps = (64, 1024, 4096) if quick else (64, 256, 1024, 4096)
    return [LayerCase("long1d", f"fir{k}@{n // 1024}k", 1, 4, (k,), (n,), 1,
                      padding=(k // 2,), bias=True)
            for n in lengths for k in taps]


def dense_cases(quick: bool) -> list[LayerCase]:
    """Dense (groups=1) layers with large kernels, the forward models of
    imaging and signal processing: a colour image through a 31x31
    point-spread function that mixes channels, a 16-channel layer with 31x31
    kernels, a volume through a 15x15x15 3-D PSF, and a bank of 16x16
    filters of 1025 taps over 16k samples; 'same' padding, bias, batch 2
    (the volume 1). Quick: batch 1, the first two."""
    batch = 1 if quick else 2
    cases = [
        LayerCase("dense", "psf31@256", 3, 3, (31, 31), (256, 256), batch, padding=(15, 15),
                  bias=True),
        LayerCase("dense", "dense31@128", 16, 16, (31, 31), (128, 128), batch,
                  padding=(15, 15), bias=True),
        LayerCase("dense", "vol15@48", 2, 2, (15, 15, 15), (48, 48, 48), 1, padding=(7, 7, 7),
                  bias=True),
        LayerCase("dense", "bank1025@16k", 16, 16, (1025,), (16384,), batch, padding=(512,),
                  bias=True),
    ]
    return cases[:2] if quick else cases


LAYER_SUITES = {
    "resnet50": resnet50_cases,
    "conv1d": conv1d_cases,
    "conv3d": conv3d_cases,
    "depthwise": depthwise_cases,
    "long1d": long1d_cases,
    "dense": dense_cases,
}

# Suites of large kernels, where the FFT engine (method='fft'/'auto') and
# fft-conv-pytorch are also compared.
LARGE_KERNEL_SUITES = {"depthwise", "long1d", "dense"}


def is_large_kernel_target(case: LayerCase) -> bool:
    """The stride-1 large-kernel layers that must run >= 10x faster than
    torch.nn with method='auto': depthwise 31x31 at 128x128, 1-D kernels of
    at least 1024 taps, and every dense large-kernel layer."""
    if not case.unit_stride:
        return False
    if case.suite == "depthwise":
        return case.kernel == (31, 31) and case.size == (128, 128)
    if case.suite == "dense":
        return True
    return case.suite == "long1d" and case.kernel[0] >= 1024
