"""Run weights trained with true convolution in a PyTorch model.

Theano/Lasagne's Conv2DLayer (with its default filter flipping), Flux.jl's
``Conv`` and MATLAB's ``conv2``/``convn`` compute true convolution: the kernel
is flipped. Weights trained there are the flips of the weights torch.nn would
need, so loading them into ``torch.nn.Conv2d`` silently changes the network.

This example plays the part of such a framework: it draws a small two-layer
network's weights reproducibly (seeded), saves them as a ``.npz`` file in
PyTorch's ``(C_out, C_in, kH, kW)`` layout (Lasagne's too; arrays from Flux.jl
or MATLAB need their axes permuted into it, never flipped), and computes the
network's output independently with ``scipy.signal.convolve2d`` per channel
pair ('valid' mode, summed over input channels, then subsampled for stride).
Then it builds the same architecture from torch.nn and compares:

* torch.nn.Conv2d with the weights as saved: wrong (cross-correlation);
* ``torchflip.convert(model, flip_weights=False)``: the reference output;
* ``torchflip.revert`` of that: plain torch.nn layers holding flipped weights,
  also the reference output.

Run:  python examples/port_true_conv_weights.py [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.signal
import torch
from torch import nn

import torchflip

# (in_channels, out_channels, kernel, stride) of each layer; ReLU between.
ARCHITECTURE = [(3, 6, (5, 5), 1), (6, 4, (3, 4), 2)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=32, help="input height and width")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "output",
                        help="folder for the saved weights")
    return parser.parse_args()


def train_elsewhere(seed: int) -> dict[str, np.ndarray]:
    """Stand-in for a network trained with true convolution: seeded random
    weights and biases, named as torch.nn.Sequential's state_dict names them."""
    rng = np.random.default_rng(seed)
    weights = {}
    for index, (c_in, c_out, kernel, _) in enumerate(ARCHITECTURE):
        layer = 2 * index  # Sequential positions of the convolutions (ReLUs between)
        fan_in = c_in * kernel[0] * kernel[1]
        weights[f"{layer}.weight"] = rng.normal(0, fan_in ** -0.5, (c_out, c_in, *kernel))
        weights[f"{layer}.bias"] = rng.normal(0, 0.1, c_out)
    return weights


def reference_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    """True convolution by scipy.signal: for each image and output channel o,
    ``b[o] + sum_c convolve2d(x[c], w[o, c], 'valid')``, subsampled by stride
    (a strided convolution is the unit-stride one read every stride samples)."""
    out = np.stack([
        np.stack([
            sum(scipy.signal.convolve2d(image[c], w[o, c], mode="valid")
                for c in range(w.shape[1])) + b[o]
            for o in range(w.shape[0])
        ])
        for image in x
    ])
    return out[:, :, ::stride, ::stride]


def reference_network(x: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    for index, (_, _, _, stride) in enumerate(ARCHITECTURE):
        layer = 2 * index
        x = np.maximum(reference_conv2d(x, weights[f"{layer}.weight"],
                                        weights[f"{layer}.bias"], stride), 0.0)
    return x


def torch_network() -> nn.Sequential:
    """The same architecture, written the usual PyTorch way."""
    layers: list[nn.Module] = []
    for c_in, c_out, kernel, stride in ARCHITECTURE:
        layers += [nn.Conv2d(c_in, c_out, kernel, stride=stride), nn.ReLU()]
    return nn.Sequential(*layers).double()


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "true_conv_weights.npz"
    np.savez(path, **train_elsewhere(args.seed))

    # From here on, only the saved file is used, as when porting for real.
    saved = dict(np.load(path))
    x = np.random.default_rng(args.seed + 1).normal(size=(args.batch, 3, args.size, args.size))
    reference = reference_network(x, saved)

    model = torch_network()
    model.load_state_dict({name: torch.from_numpy(value) for name, value in saved.items()})
    ported = torchflip.convert(model, flip_weights=False)  # keep the weights as trained
    back_in_torch_nn = torchflip.revert(ported)  # torch.nn layers, weights flipped

    candidates = {
        "torch.nn.Conv2d, weights as saved": model,
        "torchflip.convert(model, flip_weights=False)": ported,
        "torchflip.revert(ported): torch.nn, flipped weights": back_in_torch_nn,
    }
    scale = np.abs(reference).max()
    print(f"weights: {path}")
    print(f"input {x.shape} -> output {reference.shape}, float64; reference: "
          "scipy.signal.convolve2d ('valid', summed over input channels)")
    print(f"largest reference output: {scale:.3f}\n")
    print(f"{'model':<54}max |output - reference|")
    errors = {}
    with torch.no_grad():
        for name, candidate in candidates.items():
            output = candidate(torch.from_numpy(x)).numpy()
            errors[name] = np.abs(output - reference).max()
            print(f"{name:<54}{errors[name]:.1e}")

    tolerance = 1e-12 * scale
    if errors["torch.nn.Conv2d, weights as saved"] < 1e-3 * scale:
        raise SystemExit("unexpected: cross-correlation matched true convolution")
    for name in list(candidates)[1:]:
        if errors[name] > tolerance:
            raise SystemExit(f"{name} does not reproduce the reference")
    print(f"\nported models agree with scipy.signal to within {tolerance:.0e}; "
          "plain torch.nn with the same weights does not.")


if __name__ == "__main__":
    main()
