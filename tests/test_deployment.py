"""torchflip layers go wherever a torch.nn convolution goes: torch.export
(dynamic batch, save/load in a fresh process), AOTInductor, TorchScript
(script and trace, save/load in a fresh process), ONNX with onnxruntime,
autocast, memory formats and serialization. Every comparison is against the
same model built from torch.nn layers with flipped weights, or the eager
torchflip model."""

import copy
import io
import pickle

import pytest
import torch

import torchflip
import torchflip.nn as tnn
from tests.deployment import ci_env, export_onnx, run_fresh_process  # noqa: F401 (fixture)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        tnn.Conv2d(3, 8, 4, padding="same"), torch.nn.ReLU(),
        tnn.Conv2d(8, 8, 3, padding=1, padding_mode="circular", groups=2), torch.nn.ReLU(),
        tnn.Conv2d(8, 4, 3, stride=2), torch.nn.ReLU(),
        tnn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
    ).eval()


def _torch_reference(model: torch.nn.Module) -> torch.nn.Module:
    return torchflip.revert(model)


def test_reference_model_is_independent():
    model = _model()
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model(x), _torch_reference(model)(x), rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, (tnn.Conv2d, tnn.ConvTranspose2d))
                   for m in _torch_reference(model).modules())


def test_export_dynamic_batch_save_load_in_fresh_process(tmp_path):
    model = _model()
    x = torch.randn(2, 3, 16, 16)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (x,), dynamic_shapes={"input": {0: batch}})
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert "torchflip.conv.default" in ops and "torchflip.conv_transpose.default" in ops
    for n in (1, 5):
        xn = torch.randn(n, 3, 16, 16)
        torch.testing.assert_close(program.module()(xn), model(xn), rtol=0, atol=0)

    path = tmp_path / "model.pt2"
    torch.export.save(program, path)
    x7 = torch.randn(7, 3, 16, 16)
    torch.save({"x": x7, "y": model(x7)}, tmp_path / "io.pt")
    out = run_fresh_process(f"""
        import torch, torchflip
        program = torch.export.load({str(path)!r})
        data = torch.load({str(tmp_path / 'io.pt')!r})
        print(float((program.module()(data['x']) - data['y']).abs().max()))
    """)
    assert float(out.strip().splitlines()[-1]) == 0.0


def test_export_decomposes_to_core_aten():
    model = _model()
    x = torch.randn(2, 3, 16, 16)
    table = torch.export.default_decompositions()
    table.update(torchflip.decompositions())
    program = torch.export.export(model, (x,)).run_decompositions(table)
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert not any(t.startswith("torchflip.") for t in targets), targets
    torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-5)


def test_aot_inductor(tmp_path, ci_env):
    model = torch.nn.Sequential(tnn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
                                tnn.ConvTranspose2d(4, 1, 2, stride=2)).eval()
    x = torch.randn(2, 2, 8, 8)
    batch = torch.export.Dim("batch", min=1, max=16)
    program = torch.export.export(model, (x,), dynamic_shapes={"input": {0: batch}})
    package = torch._inductor.aoti_compile_and_package(
        program, package_path=str(tmp_path / "model.pt2"))
    runner = torch._inductor.aoti_load_package(package)
    for n in (1, 3):
        xn = torch.randn(n, 2, 8, 8)
        torch.testing.assert_close(runner(xn), model(xn), rtol=1e-5, atol=1e-5)


def test_torchscript_script_save_load_in_fresh_process(tmp_path):
    model = _model()
    scripted = torch.jit.script(model)
    x = torch.randn(3, 3, 16, 16)
    torch.testing.assert_close(scripted(x), model(x), rtol=0, atol=0)
    torch.testing.assert_close(scripted(x[0]), model(x[0]), rtol=0, atol=0)  # unbatched
    assert "torchflip::conv" in str(scripted.graph) or "torchflip::conv" in "".join(
        str(m.graph) for m in scripted.modules() if hasattr(m, "graph"))

    path = tmp_path / "scripted.pt"
    scripted.save(str(path))
    torch.save({"x": x, "y": model(x)}, tmp_path / "io.pt")
    out = run_fresh_process(f"""
        import torch, torchflip
        model = torch.jit.load({str(path)!r})
        data = torch.load({str(tmp_path / 'io.pt')!r})
        print(float((model(data['x']) - data['y']).abs().max()))
    """)
    assert float(out.strip().splitlines()[-1]) == 0.0


def test_torchscript_transposed_output_size():
    layer = tnn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    scripted = torch.jit.script(layer)
    y = torch.randn(1, 4, 8, 8)
    for size in ([15, 15], [16, 16], [1, 2, 16, 15]):
        torch.testing.assert_close(scripted(y, size), layer(y, size), rtol=0, atol=0)
    with pytest.raises(Exception, match="output_size"):
        scripted(y, [20, 20])


def test_torchscript_trace():
    model = _model()
    x = torch.randn(2, 3, 16, 16)
    traced = torch.jit.trace(model, x)
    x5 = torch.randn(5, 3, 16, 16)
    torch.testing.assert_close(traced(x5), model(x5), rtol=0, atol=0)
    graphs = "".join(str(m.inlined_graph) for m in [traced])
    assert "torchflip::conv" in graphs


def test_onnx_standard_graph_runs_in_onnxruntime(tmp_path):
    model = _model()
    x = torch.randn(2, 3, 16, 16)
    batch = torch.export.Dim("batch", min=1, max=64)
    exported = torch.export.export(model, (x,), dynamic_shapes={"input": {0: batch}})
    session, op_types = export_onnx(exported, tmp_path / "model.onnx")
    assert {"Conv", "ConvTranspose"} <= op_types
    x5 = torch.randn(5, 3, 16, 16)
    out = session.run(None, {session.get_inputs()[0].name: x5.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(out), model(x5).detach(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layer", [
    lambda: tnn.Conv2d(3, 4, 3, padding=1),
    lambda: tnn.Conv1d(3, 4, 5),
    lambda: tnn.ConvTranspose2d(3, 4, 3, stride=2),
])
def test_autocast_cpu_bfloat16_follows_torch_policy(layer):
    layer = layer()
    reference = layer.to_torch()
    x = torch.randn(2, 3, 10, 10) if layer.weight.dim() == 4 else torch.randn(2, 3, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref = layer(x), reference(x)
    assert out.dtype == ref.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    # Gradients flow back to the float32 parameters.
    out.float().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.dtype == torch.float32


def test_autocast_keeps_float64():
    layer = tnn.Conv2d(2, 2, 3).double()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(torch.randn(1, 2, 6, 6, dtype=torch.float64))
    assert out.dtype == torch.float64


@pytest.mark.parametrize("factory,fmt,shape", [
    (lambda: tnn.Conv2d(4, 6, 3, padding=1), torch.channels_last, (2, 4, 9, 9)),
    (lambda: tnn.Conv3d(4, 6, 3, padding=1), torch.channels_last_3d, (2, 4, 5, 6, 7)),
    (lambda: tnn.ConvTranspose2d(4, 6, 3, stride=2), torch.channels_last, (2, 4, 5, 5)),
])
def test_channels_last_output_matches_torch(factory, fmt, shape):
    layer = factory()
    reference = layer.to_torch()
    x = torch.randn(shape).to(memory_format=fmt)
    for convert_layer in (False, True):
        if convert_layer:
            layer, reference = layer.to(memory_format=fmt), reference.to(memory_format=fmt)
        out, ref = layer(x), reference(x)
        assert out.stride() == ref.stride()
        assert out.is_contiguous(memory_format=fmt) == ref.is_contiguous(memory_format=fmt)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_serialization_of_modules_and_state_dicts(tmp_path):
    model = _model()
    x = torch.randn(2, 3, 16, 16)
    expected = model(x)

    torch.save(model, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    assert type(loaded[0]) is tnn.Conv2d
    torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)

    torch.save(model.state_dict(), tmp_path / "state.pt")
    fresh = _model()
    for p in fresh.parameters():
        torch.nn.init.zeros_(p)
    fresh.load_state_dict(torch.load(tmp_path / "state.pt"))
    torch.testing.assert_close(fresh(x), expected, rtol=0, atol=0)

    torch.testing.assert_close(pickle.loads(pickle.dumps(model))(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(copy.deepcopy(model)(x), expected, rtol=0, atol=0)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.load(buffer, weights_only=False)(x), expected, rtol=0, atol=0)


def test_loading_a_torch_state_dict_keeps_weights_and_changes_the_function():
    """Documented behaviour: a torch.nn state_dict loads as-is (right for weights
    trained with true convolution), so the function is the flipped one; use
    from_torch/convert to keep the function."""
    torch_conv = torch.nn.Conv2d(2, 3, 3)
    flip_conv = tnn.Conv2d(2, 3, 3)
    flip_conv.load_state_dict(torch_conv.state_dict())
    assert torch.equal(flip_conv.weight, torch_conv.weight)
    x = torch.randn(1, 2, 7, 7)
    flipped = torch.nn.functional.conv2d(x, torch_conv.weight.flip(-2, -1), torch_conv.bias)
    torch.testing.assert_close(flip_conv(x), flipped, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(flip_conv(x), torch_conv(x), atol=1e-3)
    torch.testing.assert_close(tnn.Conv2d.from_torch(torch_conv)(x), torch_conv(x),
                               rtol=1e-5, atol=1e-5)
