"""torch.compile traces the operators (their FakeTensor kernels) and their
C++ autograd, forward and backward, with static and dynamic shapes. Values
and gradients are compared with eager torch.nn.functional on the flipped
kernel."""

import pytest
import torch

import torchflip.nn.functional as TF
from tests.reference import torch_conv, torch_conv_transpose


def model(x, w1, b1, w2):
    h = torch.relu(TF.conv2d(x, w1, b1, stride=1, padding="same", groups=2))
    return TF.conv_transpose2d(h, w2, None, stride=2, padding=1, output_padding=1)


def reference(x, w1, b1, w2):
    h = torch.relu(torch_conv(x, w1, b1, padding="same", groups=2))
    return torch_conv_transpose(h, w2, None, stride=2, padding=1, output_padding=1)


def _args(batch, size, requires_grad=(True, True, True, True)):
    shapes = [(batch, 4, size, size + 1), (6, 2, 4, 3), (6,), (6, 3, 3, 3)]
    return [torch.randn(*s).requires_grad_(r) for s, r in zip(shapes, requires_grad)]


def _check(compiled, args):
    out = compiled(*args)
    g = torch.randn_like(out)
    wanted = [a for a in args if a.requires_grad]
    grads = torch.autograd.grad(out, wanted, g)
    ref_args = [a.detach().requires_grad_(a.requires_grad) for a in args]
    ref_out = reference(*ref_args)
    torch.testing.assert_close(out, ref_out, atol=1e-4, rtol=1e-4)
    ref_grads = torch.autograd.grad(ref_out, [a for a in ref_args if a.requires_grad], g)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_aot_eager_fullgraph(dynamic):
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True, dynamic=dynamic)
    for batch, size in [(2, 6), (3, 7)]:
        _check(compiled, _args(batch, size))


def test_aot_eager_with_frozen_weights():
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    _check(compiled, _args(2, 6, requires_grad=(True, False, True, False)))


@pytest.mark.slow
def test_inductor_dynamic():
    torch._dynamo.reset()
    compiled = torch.compile(model, dynamic=True)
    for batch, size in [(2, 6), (3, 7)]:
        _check(compiled, _args(batch, size))


def test_inductor_compiles_the_operators_as_flip_and_aten_convolution():
    """Inductor gets the operators decomposed (torchflip/_inductor.py), so
    the compiled code runs ATen's convolutions and no torchflip kernel,
    forward and backward; Dynamo's graph still holds the operators."""
    import torch._inductor.config

    torch._dynamo.reset()
    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch.compile(model, backend=record, fullgraph=True)(*_args(2, 6))
    targets = {str(n.target) for g in graphs for n in g.graph.nodes if n.op == "call_function"}
    assert any("torchflip.conv" in t for t in targets), targets

    torch._dynamo.reset()
    with torch._inductor.config.patch(force_disable_caches=True):
        compiled = torch.compile(model, fullgraph=True)
        args = _args(2, 6)
        _check(compiled, args)
        with torch.profiler.profile() as prof:
            compiled(*args).sum().backward()
    names = {e.name for e in prof.events()}
    assert any("convolution" in n for n in names), sorted(names)
    assert not any(n.startswith("torchflip::") for n in names), sorted(names)
