"""torch.compile and torch.export a model built from torchflip layers.

torchflip's layers call registered operators (``torch.ops.torchflip.conv``
and ``conv_transpose``) that carry fake (meta) kernels, so torch.compile
traces them without graph breaks and torch.export records them as single
nodes of the exported graph. This example:

1. compiles the model with ``fullgraph=True`` (any graph break is an error)
   and checks outputs and gradients against eager mode;
2. exports it with a dynamic batch dimension (``torch.export.Dim``), checks
   the exported program against eager mode at several batch sizes, and
   prints the torchflip nodes of its graph;
3. saves the ExportedProgram with ``torch.export.save``, loads it back with
   ``torch.export.load`` and checks it again. Loading needs ``import
   torchflip`` first, which registers the operators the graph calls.

Run:  python examples/compile_and_export.py [--backend inductor] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch
from torch import nn

import torchflip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="inductor",
                        help="torch.compile backend (inductor, aot_eager, eager)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "output",
                        help="folder for the saved ExportedProgram")
    return parser.parse_args()


def make_model() -> nn.Sequential:
    """A small image-to-image network touching the main code paths: 'same'
    padding with an odd and an even kernel, reflect padding, stride, groups
    and a transposed layer."""
    return nn.Sequential(
        torchflip.nn.Conv2d(3, 8, 3, padding="same", padding_mode="reflect"),
        nn.ReLU(),
        torchflip.nn.Conv2d(8, 16, 4, stride=2, padding=1, groups=2),
        nn.ReLU(),
        torchflip.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1),
        nn.ReLU(),
        torchflip.nn.Conv2d(8, 3, 2, padding="same"),
    )


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|: float32 rounding scales with the values, and a
    bias gradient (a sum over the whole output) is large."""
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def check(name: str, difference: float, tolerance: float) -> None:
    status = "ok" if difference <= tolerance else "MISMATCH"
    print(f"  {name:<52} relative difference {difference:.1e}  {status}")
    if difference > tolerance:
        raise SystemExit(f"{name}: differs from eager mode by {difference:.1e}")


def gradients(model: nn.Module, run, x: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    run(x).square().sum().backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    model = make_model()
    x = torch.randn(4, 3, 32, 32)
    eager = model(x)
    eager_grads = gradients(model, model, x)
    tolerance = 1e-5  # float32; compiled code may sum in another order (Inductor
    # compiles the operators as a flip and ATen's convolution, with its own reductions)

    print("0. eager mode against torch.nn with flipped weights (torchflip.revert)")
    with warnings.catch_warnings():  # torch.nn's note that even-kernel 'same' pads a copy
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
        reference = torchflip.revert(model)(x)
    check("forward", max_difference(eager, reference), tolerance)

    print(f"1. torch.compile(model, backend={args.backend!r}, fullgraph=True)")
    compiled = torch.compile(model, backend=args.backend, fullgraph=True)
    start = time.perf_counter()
    output = compiled(x)
    print(f"  first call (compiling) took {time.perf_counter() - start:.1f} s")
    check("forward", max_difference(output, eager), tolerance)
    for name, grad in gradients(model, compiled, x).items():
        check(f"gradient of {name} {tuple(grad.shape)}", max_difference(grad, eager_grads[name]),
              tolerance)

    print("2. torch.export.export with a dynamic batch dimension")
    batch = torch.export.Dim("batch", min=1, max=1024)
    start = time.perf_counter()
    program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    print(f"  export took {time.perf_counter() - start:.1f} s; torchflip nodes in the graph:")
    for node in program.graph.nodes:
        if node.op == "call_function" and str(node.target).startswith("torchflip."):
            print(f"    {node.target}")
    for n in (1, 4, 7):
        xn = torch.randn(n, 3, 32, 32)
        check(f"exported program, batch {n}", max_difference(program.module()(xn), model(xn)),
              tolerance)

    print("3. torch.export.save / torch.export.load")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "torchflip_model.pt2"
    torch.export.save(program, path)
    loaded = torch.export.load(path)
    for n in (2, 9):
        xn = torch.randn(n, 3, 32, 32)
        check(f"loaded program, batch {n}", max_difference(loaded.module()(xn), model(xn)),
              tolerance)
    print(f"saved: {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
