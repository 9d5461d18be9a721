"""torchflip.signal (the ``fft_conv`` operator) wherever a model goes: the
core-ATen decomposition against the compiled operator, ONNX with onnxruntime,
torch.jit.trace (save/load in a fresh process), torch.export with a dynamic
batch (save/load in a fresh process) and AOTInductor. Every comparison is
against the eager outputs of the same model or operator."""

from __future__ import annotations

import pytest
import torch

import torchflip
import torchflip.nn as tnn
from tests.deployment import ci_env, export_onnx, run_fresh_process  # noqa: F401 (fixture)
from torchflip import signal
from torchflip.signal._fast_len import next_fast_len
from torchflip.signal._fft_op import alias_free_length
from torchflip.signal._modes import window

FFT_CONV = torch.ops.torchflip.fft_conv.default


class Window(torch.nn.Module):
    """One call of an fft_conv overload with fixed integer arguments."""

    def __init__(self, op, axes, start, length, fft_shape):
        super().__init__()
        self.op, self.args = op, (axes, start, length, fft_shape)

    def forward(self, in1, in2):
        return self.op(in1, in2, *self.args)


def _window_cases():
    """(shape1, shape2, axes, start, length): every mode in 1-D to 3-D, then
    windows that reach past the support, miss it, or broadcast."""
    cases = []
    shapes = {1: ((11,), (4,)), 2: ((9, 6), (4, 3)), 3: ((6, 5, 7), (3, 2, 4))}
    for ndim, (shape1, shape2) in shapes.items():
        for mode in ("full", "same", "valid"):
            start, length = zip(*(window(mode, n1, n2) for n1, n2 in zip(shape1, shape2)))
            cases.append(pytest.param(shape1, shape2, list(range(ndim)), list(start),
                                      list(length), id=f"{ndim}d-{mode}"))
    cases += [
        pytest.param((2, 5, 3), (1, 4, 2), [-2, -1], [-2, 1], [9, 6], id="past-both-ends"),
        pytest.param((3, 7), (3, 4), [1], [12], [3], id="outside-support"),
        pytest.param((2, 2), (2, 9), [1], [4], [2], id="fft-shorter-than-in2"),
        pytest.param((2, 5, 3), (1, 5, 2), [2, 1], [1, 0], [2, 9], id="unsorted-axes-broadcast"),
        pytest.param((4, 1, 6), (1, 3, 6), [], [], [], id="no-axes"),
    ]
    return cases


def _core_aten_table() -> dict:
    table = torch.export.default_decompositions()
    table.update(torchflip.decompositions())
    return table


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.float32])
@pytest.mark.parametrize("shape1,shape2,axes,start,length", _window_cases())
def test_fft_conv_decomposition_matches_operator(shape1, shape2, axes, start, length, dtype):
    in1, in2 = torch.randn(shape1, dtype=dtype), torch.randn(shape2, dtype=dtype)
    ndim = len(shape1)
    fft_shape = [next_fast_len(alias_free_length(shape1[a] + shape2[a] - 1, s, n))
                 for a, s, n in zip(axes, start, length)]
    if axes == [1] and start == [12]:
        fft_shape = [7]  # any length is alias-free for an empty window; not 5-smooth
    module = Window(FFT_CONV, axes, start, length, fft_shape)
    lowered = torch.export.export(module, (in1, in2)).run_decompositions(_core_aten_table())
    targets = {str(n.target) for n in lowered.graph.nodes if n.op == "call_function"}
    assert not any(t.startswith("torchflip.") for t in targets), targets
    if axes:
        fft = {"aten._fft_c2c.default"} if dtype.is_complex else {
            "aten._fft_r2c.default", "aten._fft_c2r.default"}
        assert fft <= targets, targets
    expected = module(in1, in2)
    out = lowered.module()(in1, in2)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    tolerance = 1e-12 if dtype != torch.float32 else 1e-5
    torch.testing.assert_close(out, expected, rtol=tolerance, atol=tolerance * ndim)


def test_both_fft_conv_overloads_decompose():
    in1, in2 = torch.randn(3, 20), torch.randn(1, 5)
    for op in (torch.ops.torchflip.fft_conv.default, torch.ops.torchflip._fft_conv.default):
        module = Window(op, [1], [2], [20], [24])
        lowered = torch.export.export(module, (in1, in2)).run_decompositions(_core_aten_table())
        assert not any(str(n.target).startswith("torchflip.") for n in lowered.graph.nodes)
        torch.testing.assert_close(lowered.module()(in1, in2), module(in1, in2))


class SignalModel(torch.nn.Module):
    """Every FFT path of torchflip.signal and torchflip.nn on a (batch, 4, 300)
    input: fftconvolve along the last axis ('same'), a 2-D convolve with
    method='fft' ('valid') over (channels, time), oaconvolve ('full') and a
    layer with method='fft' (Python torch.fft, no fft_conv operator)."""

    def __init__(self):
        super().__init__()
        self.h = torch.nn.Parameter(torch.randn(1, 1, 31))
        self.k = torch.nn.Parameter(torch.randn(1, 3, 5))
        self.layer = tnn.Conv1d(4, 2, 101, padding=50, method="fft")

    def forward(self, x):
        a = signal.fftconvolve(x, self.h, "same", axes=-1)                    # (B, 4, 300)
        b = signal.convolve(x[:1], self.k, "valid", method="fft")            # (1, 2, 296)
        c = signal.oaconvolve(x, self.h, "full", axes=-1)                     # (B, 4, 330)
        d = self.layer(x)                                                     # (B, 2, 300)
        return a, b, c, d


def test_onnx_signal_model_standard_graph_runs_in_onnxruntime(tmp_path):
    model = SignalModel().eval()
    x = torch.randn(2, 4, 300)
    batch = torch.export.Dim("batch", min=1, max=64)
    exported = torch.export.export(model, (x,), dynamic_shapes={"x": {0: batch}})
    session, op_types = export_onnx(exported, tmp_path / "signal.onnx")
    assert "DFT" in op_types
    x5 = torch.randn(5, 4, 300)
    outputs = session.run(None, {session.get_inputs()[0].name: x5.numpy()})
    for out, expected in zip(outputs, model(x5)):
        expected = expected.detach()
        # onnxruntime's DFT is less accurate than pocketfft at lengths that
        # are not powers of two: errors up to about 5e-5 of the largest value.
        scale = float(expected.abs().max())
        torch.testing.assert_close(torch.from_numpy(out), expected, rtol=0, atol=1e-4 * scale)


def test_onnx_complex_input_as_real_pairs(tmp_path):
    """ONNX has no complex tensors: the exporter gives complex inputs and
    outputs a trailing dimension of 2 (real, imaginary), as view_as_real."""
    class Complex(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.h = torch.nn.Parameter(torch.randn(1, 17, dtype=torch.complex64))

        def forward(self, x):
            return signal.fftconvolve(x, self.h, "same", axes=-1)

    model = Complex().eval()
    x = torch.randn(3, 200, dtype=torch.complex64)
    session, op_types = export_onnx(torch.export.export(model, (x,)), tmp_path / "c.onnx")
    assert "DFT" in op_types
    out = session.run(None, {session.get_inputs()[0].name: torch.view_as_real(x).numpy()})[0]
    expected = torch.view_as_real(model(x).detach())
    scale = float(expected.abs().max())
    torch.testing.assert_close(torch.from_numpy(out), expected, rtol=0, atol=1e-4 * scale)


class Filters(torch.nn.Module):
    """The signal functions a traced model may call, on (batch, 3000) inputs."""

    def __init__(self):
        super().__init__()
        self.h = torch.nn.Parameter(torch.randn(1, 31, dtype=torch.float64))
        self.k = torch.nn.Parameter(torch.randn(2, 5, dtype=torch.float64))

    def forward(self, x):
        return (signal.fftconvolve(x, self.h, "same", axes=-1),
                signal.oaconvolve(x, self.h, "valid", axes=-1),
                signal.convolve(x, self.k, "full", method="fft"),
                signal.convolve(x, self.k, "valid", method="direct"))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
def test_jit_trace_save_load_in_fresh_process(tmp_path):
    model = Filters()
    x = torch.randn(3, 3000, dtype=torch.float64, requires_grad=True)
    # check_trace (default) retraces under no_grad: the graph must not change.
    traced = torch.jit.trace(model, x)
    assert "torchflip::fft_conv" in str(traced.inlined_graph)
    outs, expected = traced(x), model(x)
    for out, want in zip(outs, expected):
        torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
    # Gradients flow through the traced graph (fft_conv's registered autograd).
    loss = sum(o.square().sum() for o in outs)
    got = torch.autograd.grad(loss, (x, model.h))
    want = torch.autograd.grad(sum(e.square().sum() for e in expected), (x, model.h))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)

    path = tmp_path / "traced.pt"
    traced.save(str(path))
    torch.save({"x": x.detach(), "y": [e.detach() for e in expected]}, tmp_path / "io.pt")
    out = run_fresh_process(f"""
        import torch, torchflip
        model = torch.jit.load({str(path)!r})
        data = torch.load({str(tmp_path / 'io.pt')!r})
        outs = model(data['x'])
        print(max(float((o - y).abs().max()) for o, y in zip(outs, data['y'])))
    """)
    assert float(out.strip().splitlines()[-1]) <= 1e-12


@pytest.mark.parametrize("fn", [signal.fftconvolve, signal.oaconvolve, signal.convolve,
                                signal.convolve2d])
def test_jit_script_is_refused_at_compile_time(fn):
    """TorchScript cannot compile the signal functions (their shape logic is
    plain Python); scripting fails at once, naming the function, and never
    at run time. torch.jit.trace and torch.export are the supported routes."""
    class Caller(torch.nn.Module):
        def forward(self, x, h):
            return fn(x, h)

    with pytest.raises(torch.jit.frontend.NotSupportedError, match=fn.__name__):
        torch.jit.script(Caller())


class LastAxis(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.h = torch.nn.Parameter(torch.randn(1, 1, 31))

    def forward(self, x):
        return signal.fftconvolve(x, self.h, "same", axes=-1)


def _export_last_axis(model):
    batch = torch.export.Dim("batch", min=1, max=64)
    return torch.export.export(model, (torch.randn(2, 3, 500),),
                               dynamic_shapes={"x": {0: batch}}, strict=False)


def test_export_dynamic_batch_save_load_in_fresh_process(tmp_path):
    model = LastAxis().eval()
    program = _export_last_axis(model)
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert "torchflip.fft_conv.default" in targets
    for n in (1, 5):
        xn = torch.randn(n, 3, 500)
        torch.testing.assert_close(program.module()(xn), model(xn), rtol=0, atol=0)

    path = tmp_path / "signal.pt2"
    torch.export.save(program, path)
    x7 = torch.randn(7, 3, 500)
    torch.save({"x": x7, "y": model(x7).detach()}, tmp_path / "io.pt")
    out = run_fresh_process(f"""
        import torch, torchflip
        program = torch.export.load({str(path)!r})
        data = torch.load({str(tmp_path / 'io.pt')!r})
        print(float((program.module()(data['x']) - data['y']).abs().max()))
    """)
    assert float(out.strip().splitlines()[-1]) == 0.0


def test_aot_inductor_dynamic_batch(tmp_path, ci_env):
    model = LastAxis().eval()
    package = torch._inductor.aoti_compile_and_package(
        _export_last_axis(model), package_path=str(tmp_path / "signal.pt2"))
    runner = torch._inductor.aoti_load_package(package)
    for n in (1, 6):
        xn = torch.randn(n, 3, 500)
        torch.testing.assert_close(runner(xn), model(xn), rtol=1e-5, atol=1e-5)
