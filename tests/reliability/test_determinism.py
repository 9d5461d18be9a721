"""Determinism: under torch.use_deterministic_algorithms(True) every entry
point runs forward and backward without error, and on CPU repeated runs give
bitwise identical outputs and gradients, in one process and across processes
(whose timings differ, so nothing may depend on how long a call took)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import torchflip.nn as tnn
import torchflip.nn.functional as TF
from tests.reference import torch_conv, torch_conv_transpose

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def deterministic():
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(previous)


def _cases():
    """(name, computation, reference): computation(x, w, b) -> output, for
    float32 tensors made by _tensors(name)."""
    return [
        ("conv1d", lambda x, w, b: TF.conv1d(x, w, b, stride=2, padding=1), torch_conv,
         dict(stride=2, padding=1)),
        ("conv2d", lambda x, w, b: TF.conv2d(x, w, b, padding="same", dilation=2), torch_conv,
         dict(padding="same", dilation=2)),
        ("conv3d", lambda x, w, b: TF.conv3d(x, w, b, groups=2), torch_conv, dict(groups=2)),
        ("conv1d fft", lambda x, w, b: TF.conv1d(x, w, b, padding=3, method="fft"), torch_conv,
         dict(padding=3)),
        ("conv_transpose1d", lambda x, w, b: TF.conv_transpose1d(x, w, b, stride=3),
         torch_conv_transpose, dict(stride=3)),
        ("conv_transpose2d", lambda x, w, b: TF.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                                 output_padding=1),
         torch_conv_transpose, dict(stride=2, padding=1, output_padding=1)),
        ("conv_transpose3d", lambda x, w, b: TF.conv_transpose3d(x, w, b, groups=2),
         torch_conv_transpose, dict(groups=2)),
    ]


def _tensors(name: str):
    generator = torch.Generator().manual_seed(len(name))
    dims = int(name.split("d")[0][-1])
    transposed = "transpose" in name
    groups = 2 if dims == 3 else 1
    x = torch.randn(2, 4, *[7] * dims, generator=generator)
    kernel = [7] if "fft" in name else [3] * dims
    shape = (4, 6 // groups, *kernel) if transposed else (6, 4 // groups, *kernel)
    return x, torch.randn(*shape, generator=generator), torch.randn(6, generator=generator)


def _run(compute, x, w, b, double_backward: bool):
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    out = compute(*leaves)
    grads = torch.autograd.grad(out.square().sum(), leaves, create_graph=double_backward)
    if double_backward:
        grads = grads + torch.autograd.grad(sum(g.square().sum() for g in grads), leaves)
    return [out.detach()] + [g.detach() for g in grads]


@pytest.mark.parametrize("name,compute,reference,kwargs", _cases(), ids=[c[0] for c in _cases()])
def test_deterministic_mode_runs_and_repeats_bitwise(deterministic, name, compute, reference,
                                                     kwargs):
    x, w, b = _tensors(name)
    first = _run(compute, x, w, b, double_backward=True)
    second = _run(compute, x, w, b, double_backward=True)
    for i, (a, c) in enumerate(zip(first, second)):
        assert torch.equal(a, c), f"result {i} differs between two runs"
    expected = _run(lambda x, w, b: reference(x, w, b, **kwargs), x, w, b, double_backward=False)
    for i, (a, e) in enumerate(zip(first, expected)):
        torch.testing.assert_close(a, e, atol=1e-4, rtol=1e-4,
                                   msg=lambda m, i=i: f"result {i}: {m}")


@pytest.mark.parametrize("grad_enabled", [True, False])
@pytest.mark.parametrize("make", [lambda: tnn.Conv2d(4, 6, 3, padding=1),
                                  lambda: tnn.ConvTranspose2d(4, 6, 3, stride=2),
                                  lambda: tnn.Conv1d(4, 4, 31, padding=15)],
                         ids=["Conv2d", "ConvTranspose2d", "Conv1d long kernel"])
def test_layers_repeat_bitwise(make, grad_enabled):
    """Without deterministic mode too: a layer gives identical bits on every
    call (its engine choice and flipped-weight cache do not change results)."""
    torch.manual_seed(0)
    layer = make()
    x = torch.randn(2, layer.in_channels, *[64 if layer.kernel_size[0] > 16 else 9]
                    * (layer.weight.dim() - 2))
    with torch.set_grad_enabled(grad_enabled):
        outputs = [layer(x).detach() for _ in range(4)]
    assert all(torch.equal(outputs[0], o) for o in outputs[1:])


# A subprocess computing a default layer with a kernel long enough for the
# FFT engine to be a candidate, with the clock made to favour the engine timed
# earlier or later: every interval it measures is longer (or shorter) than
# the previous one.
_SUBPROCESS = """
import sys, time, torch, torchflip
favour_later = sys.argv[1] == "later"
calls, now = [0], [0.0]
def fake_clock():
    calls[0] += 1
    now[0] += 1.0 / calls[0] if favour_later else float(calls[0])
    return now[0]
time.perf_counter = fake_clock
torch.use_deterministic_algorithms(True)
torch.manual_seed(0)
layer = torchflip.nn.Conv1d(2, 2, 65, padding=32)
x = torch.randn(1, 2, 1024)
sys.stdout.write(layer(x).detach().numpy().tobytes().hex())
"""


def test_deterministic_mode_results_do_not_depend_on_timing():
    """Two processes in deterministic mode whose clocks favour different
    engines must produce the same bits (as cudnn.benchmark is ignored by
    deterministic algorithms, a timed engine choice must be too)."""
    processes = [subprocess.Popen([sys.executable, "-c", _SUBPROCESS, favour], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for favour in ("earlier", "later")]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1], "the output depends on the measured timings"
