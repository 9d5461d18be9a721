"""Loads the CMake-built libtorchflip.so into Python with torch.ops.load_library
and checks an operator against torch.nn.functional with a flipped weight.
Usage: python load_library.py /path/to/libtorchflip.so"""

import sys

import torch

torch.ops.load_library(sys.argv[1])
x, w = torch.randn(2, 3, 9, 9), torch.randn(4, 3, 3, 2)
out = torch.ops.torchflip.conv(x, w, None, [1, 1], [1, 0], [1, 1], 1)
ref = torch.nn.functional.conv2d(x, w.flip(-2, -1), None, 1, (1, 0))
err = (out - ref).abs().max().item()
print(f"torch.ops.torchflip.conv from {sys.argv[1]}: max |error| = {err:.2e}")
sys.exit(0 if err < 1e-5 else 1)
