"""The FFT engine of the layers (method='fft'/'auto') against the reference
(torch.nn.functional with the flipped weight): values, gradients (gradcheck,
float64) and the engine choice."""

import contextlib
import functools
import itertools

import pytest
import torch
import torch.nn.functional as F

import torchflip.nn as tnn
import torchflip.nn.functional as TF
from torchflip.nn import _fft_conv, _method
from torchflip.nn import conv as conv_module

CONV = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@contextlib.contextmanager
def _deterministic():
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def _flip(w):
    return w.flip(list(range(2, w.dim())))


CASES = [
    # dims, N, C_in, C_out, spatial, kernel, padding, dilation, groups
    (1, 2, 3, 4, 40, 9, 0, 1, 1),
    (1, 1, 4, 4, 64, 17, 8, 2, 4),
    (1, 3, 6, 3, 50, 16, "same", 1, 3),
    (2, 2, 3, 5, 12, 5, 2, 1, 1),
    (2, 1, 4, 4, 16, 7, "same", 2, 4),
    (2, 2, 4, 6, 11, 4, "valid", 1, 2),
    (2, 0, 2, 2, 9, 3, 1, 1, 1),
    (3, 1, 2, 3, 7, 3, 1, 1, 1),
    # padding beyond the (dilated) kernel: outputs of pure zero padding
    (1, 2, 3, 2, 20, 3, 5, 1, 1),
    (2, 1, 2, 4, 10, 3, 6, 2, 2),
]
# Transform lengths at their bound (see test_transform_lengths_at_the_bound):
# S + p (13 + 3, twice), then the kernel (9 > 5 + 2) and the output
# (10 + 12 - 3 + 1).
WRAP_BOUND_CASES = [
    (1, 2, 2, 3, 13, 7, 3, 1, 1),
    (2, 1, 2, 2, 13, 4, 3, 2, 1),
]
CASES += WRAP_BOUND_CASES + [(1, 1, 2, 2, 5, 9, 2, 1, 1), (1, 1, 2, 2, 10, 3, 6, 1, 1)]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fft_matches_reference(case, dtype):
    dims, n, cin, cout, size, k, padding, dilation, groups = case
    x = torch.randn((n, cin) + (size,) * dims, dtype=dtype, requires_grad=True)
    w = torch.randn((cout, cin // groups) + (k,) * dims, dtype=dtype, requires_grad=True)
    b = torch.randn(cout, dtype=dtype, requires_grad=True)
    out = CONV[dims](x, w, b, 1, padding, dilation, groups, method="fft")
    ref = TORCH_CONV[dims](x, _flip(w), b, 1, padding, dilation, groups)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out, ref, **tol)
    g = torch.randn_like(ref)
    grads = torch.autograd.grad(out, (x, w, b), g)
    ref_grads = torch.autograd.grad(ref, (x, w, b), g)
    for a, r in zip(grads, ref_grads):
        torch.testing.assert_close(a, r, **tol)


def _fft_and_reference(case, generator):
    """The FFT engine's output and gradients and the reference's, float64."""
    dims, n, cin, cout, size, k, padding, dilation, groups = case
    x = torch.randn((n, cin) + (size,) * dims, dtype=torch.float64, generator=generator,
                    requires_grad=True)
    w = torch.randn((cout, cin // groups) + (k,) * dims, dtype=torch.float64,
                    generator=generator, requires_grad=True)
    out = CONV[dims](x, w, None, 1, padding, dilation, groups, method="fft")
    ref = TORCH_CONV[dims](x, _flip(w), None, 1, padding, dilation, groups)
    g = torch.randn(ref.shape, dtype=torch.float64, generator=generator)
    return ((out, *torch.autograd.grad(out, (x, w), g)),
            (ref, *torch.autograd.grad(ref, (x, w), g)))


# Cases with explicit padding and at least one sample.
BOUND_CASES = [c for c in CASES if c[1] > 0 and isinstance(c[6], int)]


@pytest.mark.parametrize("case", BOUND_CASES, ids=str)
def test_transform_lengths_at_the_bound(case, monkeypatch):
    # With every length exactly max(S + p, S + 2p - K_d + 1, K_d) (no
    # rounding up to a fast length), the cyclic results hold no wrapped
    # term: the output and both gradients equal the reference's.
    monkeypatch.setattr(_fft_conv, "fast_transform_length", lambda n: n)
    got, expected = _fft_and_reference(case, torch.Generator().manual_seed(0))
    for a, r in zip(got, expected):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("case", WRAP_BOUND_CASES, ids=str)
def test_transform_lengths_one_below_the_bound_go_wrong(case, monkeypatch):
    # The control: one sample shorter, some result takes a wrapped term or
    # loses a kernel tap (or a window no longer fits, an error). The
    # kernel's and the output's bounds are not among these: taps and outputs
    # past S + p meet only padding, so one sample less still reads zeros
    # there; those bounds keep every operand and window within one period.
    monkeypatch.setattr(_fft_conv, "fast_transform_length", lambda n: n - 1)
    try:
        got, expected = _fft_and_reference(case, torch.Generator().manual_seed(0))
    except RuntimeError:
        return
    assert not all(torch.allclose(a, r, rtol=1e-9, atol=1e-9) for a, r in zip(got, expected))


def test_fast_transform_lengths_are_the_smallest_even_5_smooth_ones():
    def smooth(n):
        for f in (2, 3, 5):
            while n % f == 0:
                n //= f
        return n == 1

    for target in range(1, 400):
        n = _fft_conv.fast_transform_length(target)
        assert n >= target and n % 2 == 0 and smooth(n)
        assert not any(m % 2 == 0 and smooth(m) for m in range(target, n))


def test_same_padding_transforms_the_padded_half_not_the_padded_input():
    # dense31@128 ('same', 31x31 at 128x128): S + p = 143 -> 144 points an
    # axis; the padded input's 158 would take 160.
    assert _fft_conv.transform_lengths([128, 128], [15, 15], [31, 31]) == [144, 144]
    assert _fft_conv.padded_lengths([128, 128], [15, 15]) == [160, 160]


@pytest.mark.parametrize("dims", [1, 2])
def test_fft_gradcheck_and_gradgradcheck(dims):
    x = torch.randn((2, 4) + (9,) * dims, dtype=torch.float64, requires_grad=True)
    w = torch.randn((2, 2) + (4,) * dims, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)

    def f(x, w, b):
        return CONV[dims](x, w, b, 1, 2, 1, 2, method="fft")

    assert torch.autograd.gradcheck(f, (x, w, b))
    assert torch.autograd.gradgradcheck(f, (x, w, b))


def test_fft_backward_stays_on_fft():
    """The backward of the FFT engine is FFTs and spectral products: no
    convolution (direct or torchflip) runs in it."""
    x = torch.randn(1, 2, 64, requires_grad=True)
    w = torch.randn(2, 2, 32, requires_grad=True)
    out = TF.conv1d(x, w, method="fft")
    with torch.profiler.profile() as prof:
        out.sum().backward()
    names = {e.name for e in prof.events()}
    operators = [n for n in names if n.startswith(("aten::", "torchflip::"))]
    assert not any("conv" in n for n in operators), sorted(names)
    assert any("fft" in n.lower() for n in names), sorted(names)


@pytest.mark.parametrize("method", ["fft", _method.Engines("direct", "fft")])
def test_calls_without_gradients_skip_the_autograd_function(method, monkeypatch):
    """With nothing to differentiate (no_grad, or no operand requiring a
    gradient) the engines run without TwoEngineConv, and give the same
    result; with a gradient wanted, TwoEngineConv runs."""
    from torchflip.nn import _engines

    def refuse(*args):
        raise AssertionError("TwoEngineConv.apply called")

    monkeypatch.setattr(_engines.TwoEngineConv, "apply", refuse)
    x, w, b = torch.randn(2, 3, 40), torch.randn(4, 3, 9), torch.randn(4)
    expected = F.conv1d(x, w.flip(-1), b, padding=4)
    conv = functools.partial(TF._conv_nd, stride=1, padding=4, dilation=1, groups=1, dims=1,
                             method=method)
    torch.testing.assert_close(conv(x, w, b), expected)
    with torch.no_grad():
        torch.testing.assert_close(conv(x, w.requires_grad_(), b), expected)
    with pytest.raises(AssertionError, match="TwoEngineConv"):
        conv(x, w, b)


def test_fft_rejects_stride_and_bad_method():
    x, w = torch.randn(1, 1, 20), torch.randn(1, 1, 5)
    with pytest.raises(ValueError, match="stride"):
        TF.conv1d(x, w, stride=2, method="fft")
    with pytest.raises(ValueError, match="method"):
        TF.conv1d(x, w, method="fast")
    with pytest.raises(ValueError, match="method"):
        tnn.Conv1d(1, 1, 5, method="fast")


def test_fft_path_validates_like_the_operator():
    x, w = torch.randn(1, 3, 20), torch.randn(2, 2, 5)
    with pytest.raises(ValueError, match="C_in"):
        TF.conv1d(x, w, method="fft")
    with pytest.raises(ValueError, match="kernel is larger"):
        TF.conv1d(torch.randn(1, 2, 3), w, method="fft")


def test_auto_candidates_and_static_choice():
    # A 1-D single-channel 2048-tap filter over 32k samples: the FFT is orders
    # of magnitude cheaper than the direct sum on any backend, and the static
    # model (used where nothing is timed, as in deterministic mode) says so.
    # (What timings pick is tested with controlled timings below: real ones
    # on a loaded CI machine are not a test.)
    x, w = torch.randn(1, 1, 32768), torch.randn(1, 1, 2048)
    with _deterministic():
        assert _method.choose_engines(x, w, (1,), (0,), (1,), 1) == _method.FFT
        # A small 1-D kernel (still a candidate) stays direct.
        assert _method.choose_engines(x, torch.randn(1, 1, 101), (1,), (0,), (1,),
                                      1) == _method.DIRECT
    # A 3x3 kernel never goes to the FFT.
    assert _method.choose_engines(torch.randn(1, 4, 16, 16), torch.randn(4, 4, 3, 3),
                                  (1, 1), (1, 1), (1, 1), 1) == _method.DIRECT
    # Stride 2 never goes to the FFT.
    assert _method.choose_engines(x, w, (2,), (0,), (1,), 1) == _method.DIRECT


@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
def test_layers_with_each_method_match_torch(method):
    layer = tnn.Conv2d(3, 4, 9, padding="same", method=method)
    ref = layer.to_torch()
    x = torch.randn(2, 3, 20, 20)
    torch.testing.assert_close(layer(x), ref(x), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), ref(x), rtol=1e-4, atol=1e-4)
    assert f"method={method!r}" in repr(layer) or method == "auto"


def test_static_model_is_used_under_compile_and_matches():
    layer = tnn.Conv1d(1, 1, 1024, padding=512)
    x = torch.randn(2, 1, 8192)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), layer.to_torch()(x), rtol=1e-4, atol=1e-4)


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Forces the FFT engine to work in the smallest blocks (one group and
    one sample per block in most cases), whatever the layer's size."""
    from torchflip.nn import _fft_conv

    monkeypatch.setattr(_fft_conv, "BLOCK_MIN_BYTES", 1)
    monkeypatch.setattr(_fft_conv, "BLOCK_INPUT_SHARE", 1 << 40)
    monkeypatch.setattr(_fft_conv, "WHOLE_LAYER_BYTES", 0)


@pytest.mark.parametrize("case", [c for c in CASES if c[1] > 0], ids=str)
def test_blocked_fft_matches_reference(case, tiny_blocks):
    from torchflip.nn import _fft_conv

    dims, n, cin, cout, size, k, padding, dilation, groups = case
    x = torch.randn((n + 1, cin) + (size,) * dims, dtype=torch.float64, requires_grad=True)
    w = torch.randn((cout, cin // groups) + (k,) * dims, dtype=torch.float64,
                    requires_grad=True)
    b = torch.randn(cout, dtype=torch.float64, requires_grad=True)
    pad = padding if isinstance(padding, int) else 0
    if not isinstance(padding, str):
        gs, ns, cs, _ = _fft_conv._blocks(x, cout // groups,
                                       _fft_conv.transform_lengths(
                                           x.shape[2:], [pad] * dims,
                                           [dilation * (k - 1) + 1] * dims),
                                       groups, _fft_conv._budget(x))
        assert gs * ns * cs < groups * x.shape[0] * (cin // groups)  # really split
        # Blocks of channels, or of samples (both, for one-channel groups).
        assert cs < cin // groups or ns < x.shape[0] or cin == groups
    out = CONV[dims](x, w, b, 1, padding, dilation, groups, method="fft")
    ref = TORCH_CONV[dims](x, _flip(w), b, 1, padding, dilation, groups)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    for mask in itertools.product([True, False], repeat=3):
        wanted = [t for t, m in zip((x, w, b), mask) if m]
        if not wanted:
            continue
        torch.testing.assert_close(torch.autograd.grad(out, wanted, g, retain_graph=True),
                                   torch.autograd.grad(ref, wanted, g, retain_graph=True))


ENGINE_PAIRS = [_method.Engines(f, b) for f in ("direct", "fft") for b in ("direct", "fft")
                if "fft" in (f, b)]


@pytest.mark.parametrize("engines", ENGINE_PAIRS, ids=lambda e: f"{e.forward}+{e.backward}")
@pytest.mark.parametrize("blocked", [False, True])
def test_each_pass_engine_is_differentiable_twice(engines, blocked, request):
    from torchflip.nn._engines import TwoEngineConv

    if blocked:
        request.getfixturevalue("tiny_blocks")
    for dims, groups in ((1, 2), (2, 1)):
        x = torch.randn((2, 2) + (6,) * dims, dtype=torch.float64, requires_grad=True)
        w = torch.randn((2, 2 // groups) + (3,) * dims, dtype=torch.float64,
                        requires_grad=True)
        b = torch.randn(2, dtype=torch.float64, requires_grad=True)
        padding, dilation = (1,) * dims, (2,) * dims

        def f(x, w, b):
            return TwoEngineConv.apply(x, w, b, engines, padding, dilation, groups)

        ref = TORCH_CONV[dims](x, _flip(w), b, 1, padding, dilation, groups)
        torch.testing.assert_close(f(x, w, b), ref)
        assert torch.autograd.gradcheck(f, (x, w, b))
        assert torch.autograd.gradgradcheck(f, (x, w, b))
        assert torch.autograd.gradgradcheck(lambda x, w: f(x, w, None), (x, w))


def _ran_operators(fn):
    with torch.profiler.profile() as prof:
        fn()
    return {e.name for e in prof.events()}


def test_auto_compares_engines_over_rounds_not_by_the_fastest_call(monkeypatch):
    """'auto' picks an engine by the median over rounds of the FFT's time
    over direct's: one lucky FFT call does not decide (the faster of two
    calls picked the FFT for a 64-tap filter, 35% slower than direct in a
    model), near a tie direct is kept, and an engine whose warm-up is over
    ten times the other's time is not timed further."""
    def scripted(direct, fft):
        durations = {"direct": iter(direct), "fft": iter(fft)}
        monkeypatch.setattr(_method, "_timed_call", lambda run, device: next(durations[run()]))
        return durations

    runs, cpu = {"direct": lambda: "direct", "fft": lambda: "fft"}, torch.device("cpu")
    scripted([1.0] + [0.45] * 20, [1.0, 0.30, 0.30] + [0.60] * 20)
    assert _method._faster(runs, cpu, "fft") == "direct"
    for fft_seconds, winner in ((0.44, "direct"), (0.40, "fft")):
        scripted([1.0] + [0.45] * 20, [1.0] + [fft_seconds] * 20)
        assert _method._faster(runs, cpu, "direct") == winner
    durations = scripted([100.0], [1.0] * 20)
    assert _method._faster(runs, cpu, "fft") == "fft"
    assert next(durations["direct"], None) is None
    # Favouring the FFT (the backward pass's engine), direct must be the
    # one 10% faster.
    for direct_seconds, winner in ((0.44, "fft"), (0.40, "direct")):
        scripted([1.0] + [direct_seconds] * 20, [1.0] + [0.45] * 20)
        assert _method._faster(runs, cpu, "direct", favoured="fft") == winner


def test_auto_picks_each_pass_engine_by_its_own_time(monkeypatch):
    """With training-mode timings saying the direct forward and the FFT
    backward are faster, 'auto' runs exactly that: the direct operator
    forward, FFTs (and no convolution) backward; with the opposite timings,
    the opposite. The result matches the reference either way. Where the
    forward engines time within the margin, the forward pass takes the
    backward pass's engine."""
    times = {}

    def fake_seconds(run, device):
        called = run.__code__.co_names  # the engine function each timed lambda calls
        name = "fft" if {"fft_forward", "fft_backward"} & set(called) else "direct"
        phase = "backward" if {"_conv_backward", "fft_backward"} & set(called) else "forward"
        return times[phase, name]

    monkeypatch.setattr(_method, "_timed_call", fake_seconds)
    layer = tnn.Conv1d(3, 3, 101, padding=50, groups=3)
    ref = layer.to_torch()
    x = torch.randn(2, 3, 300, requires_grad=True)
    for fwd, bwd in (("direct", "fft"), ("fft", "direct")):
        _method.forget_measurements()
        times.update({("forward", fwd): 1.0, ("forward", "fft" if fwd == "direct" else "direct"):
                      2.0, ("backward", bwd): 1.0,
                      ("backward", "fft" if bwd == "direct" else "direct"): 2.0})
        out = layer(x)
        assert _method._MEASURED[next(iter(_method._MEASURED))] == (fwd, bwd)
        forward_ops = _ran_operators(lambda: layer(x))
        assert any(n.startswith("aten::_fft") for n in forward_ops) == (fwd == "fft")
        backward_ops = _ran_operators(lambda: layer(x).sum().backward())
        backward_only = backward_ops - forward_ops
        assert ("torchflip::conv_backward" in backward_only) == (bwd == "direct")
        torch.testing.assert_close(out, ref(x), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(torch.autograd.grad(out.sum(), x),
                                   torch.autograd.grad(ref(x).sum(), x), rtol=1e-4, atol=1e-4)
    # Forward engines within the margin of each other: the forward pass
    # takes the backward's engine, either way (no split autograd.Function).
    for bwd in ("fft", "direct"):
        _method.forget_measurements()
        other = "fft" if bwd == "direct" else "direct"
        times.update({("backward", bwd): 1.0, ("backward", other): 2.0,
                      ("forward", bwd): 1.0, ("forward", other): 0.95})
        layer(x)
        assert list(_method._MEASURED.values()) == [(bwd, bwd)]
    # Inference calls time the forward pass only, and use its engine.
    _method.forget_measurements()
    times.update({("forward", "direct"): 1.0, ("forward", "fft"): 2.0})
    with torch.no_grad():
        layer(x)
    assert list(_method._MEASURED.values()) == [("direct", "direct")]


def test_auto_times_engines_on_the_real_operands():
    """Without faked timings: the measured choice for a training call is a
    valid pair, stored per configuration, and reused."""
    _method.forget_measurements()
    x, w = torch.randn(1, 1, 8192, requires_grad=True), torch.randn(1, 1, 1024,
                                                                    requires_grad=True)
    engines = _method.choose_engines(x, w, (1,), (0,), (1,), 1)
    assert engines.forward in ("direct", "fft") and engines.backward in ("direct", "fft")
    assert len(_method._MEASURED) == 1
    assert _method.choose_engines(x, w, (1,), (0,), (1,), 1) == engines
    assert len(_method._MEASURED) == 1


@pytest.mark.parametrize("kept", [True, False], ids=["eval", "training"])
def test_fft_layer_reuses_its_forward_plan(kept, monkeypatch):
    """An FFT layer makes the engine's forward plan once per call signature
    and reuses it, with its spectra kept where the weight needs no gradient:
    every repeated call (overlap-save in one block, a last segment shorter
    than a hop) equals torch.nn's with the flipped weight, also after the
    weight is edited in place (no stale spectrum), and gradients stay
    torch.nn's."""
    plans = []
    real_plan = conv_module.forward_plan
    monkeypatch.setattr(conv_module, "forward_plan",
                        lambda *args: plans.append(args[0].shape) or real_plan(*args))
    layer = tnn.Conv1d(1, 3, 9, padding=4, method="fft").double()
    layer.train(not kept)
    x = torch.randn(1, 1, 5000, dtype=torch.float64, requires_grad=not kept)
    hop = _fft_conv._overlap_save_hop(x, layer.weight, [4], [1])
    assert hop is not None and 5000 % hop != 0
    with torch.set_grad_enabled(not kept):
        for step in range(3):
            if step == 2:
                with torch.no_grad():
                    layer.weight.mul_(-0.5)
            theirs = layer.to_torch()
            torch.testing.assert_close(layer(x), theirs(x))
            assert layer._last_call.plan is not None
            assert layer._last_call.keeps_spectra is kept
        if not kept:
            grads = [torch.autograd.grad(m(x).square().sum(), [x, m.weight])
                     for m in (layer, theirs)]
            torch.testing.assert_close(grads[0][0], grads[1][0])
            torch.testing.assert_close(grads[0][1], grads[1][1].flip(-1))
    assert plans == [x.shape]


def test_fft_layer_remembers_direct_where_the_fft_serves_no_call():
    """method='fft' on an empty batch or a half-precision input runs the
    operator, and the layer remembers that route for the signature."""
    layer = tnn.Conv1d(2, 3, 5, padding=2, method="fft")
    for x, dtype in ((torch.randn(0, 2, 40), torch.float32),
                     (torch.randn(1, 2, 40, dtype=torch.bfloat16), torch.bfloat16)):
        layer.to(dtype)
        for _ in range(2):
            with torch.no_grad():
                torch.testing.assert_close(layer(x), layer.to_torch()(x))
            assert layer._last_call.route == conv_module.DIRECT
            assert layer._last_call.plan is None


def test_layers_remember_their_auto_choice_per_call_signature(monkeypatch):
    """A layer keeps its last 'auto' choice and reuses it only for a call
    with the same signature (shapes, dtype, device, gradient or not), until
    the measurements are forgotten; deterministic mode always takes the
    static choice, never a remembered timing."""
    choices = []

    def measured(input, weight, padding, dilation, groups, keeps_spectra):
        choices.append(tuple(input.shape))
        return _method.Engines("fft", "direct")  # a pair the static model never picks

    monkeypatch.setattr(_method, "_measured_choice", measured)
    _method.forget_measurements()
    layer = tnn.Conv1d(2, 2, 101, padding=50, groups=2)
    x, longer = torch.randn(1, 2, 300), torch.randn(1, 2, 400)
    with torch.no_grad():
        layer(x)
        assert layer._last_call[1] == ("fft", "direct")
        layer(x)
        assert choices == [(1, 2, 300)]
        layer(longer)
        assert choices == [(1, 2, 300), (1, 2, 400)]
    layer(longer)  # gradient wanted now: another signature
    assert len(choices) == 3
    _method.forget_measurements()
    layer(longer)
    assert len(choices) == 4
    static = _method._static_choice(longer, layer.weight, (50,), (1,), 2)
    with _deterministic():
        assert layer._engines(longer, layer.weight) == static
    assert len(choices) == 4
    out = layer(longer)  # the remembered pair runs, and still computes the convolution
    torch.testing.assert_close(out, layer.to_torch()(longer), rtol=1e-4, atol=1e-4)


def test_auto_times_the_fft_with_kept_spectra_where_the_layer_keeps_them(monkeypatch):
    """A layer whose weight needs no gradient keeps its weight's spectra, so
    'auto' times the FFT with them kept: the weight is transformed once
    while timing (and once for the layer), against once per call for a
    weight that needs a gradient."""
    from torchflip.nn import _fft_conv

    transformed = []
    spectrum = _fft_conv._spectrum

    def counting(t, *args):
        transformed.append(t.shape[-1] == 101)  # the weight's 101 taps
        return spectrum(t, *args)

    monkeypatch.setattr(_fft_conv, "_spectrum", counting)
    _method.forget_measurements()
    x = torch.randn(1, 2, 300)
    layer = tnn.Conv1d(2, 2, 101, padding=50, groups=2)
    with torch.no_grad():
        layer(x)
    kept = transformed.count(True)
    transformed.clear()
    _method.forget_measurements()
    layer(x)  # the weight needs a gradient: transformed on every FFT call
    # Once for the timing's own cache, once for the layer's.
    assert kept == 2 < transformed.count(True)


def test_a_remembered_signature_stands_for_checked_arguments(monkeypatch):
    """A layer remembers a call's signature only once the call has
    succeeded; a call with the remembered signature skips the argument
    check, and a rejected call is rejected again."""

    monkeypatch.setattr(_method, "_measured_choice", lambda *args: _method.DIRECT)
    _method.forget_measurements()
    checks = []
    validate = conv_module.validate_once
    monkeypatch.setattr(conv_module, "validate_once",
                        lambda *args: (checks.append(args[1].shape), validate(*args)))
    layer = tnn.Conv1d(2, 2, 101, padding=50, groups=2).eval()
    x = torch.randn(1, 2, 300)
    with torch.no_grad():
        for _ in range(3):
            torch.testing.assert_close(layer(x), layer.to_torch()(x))
        assert checks == [x.shape]
        wrong = torch.randn(1, 3, 300)  # three channels for a layer of two
        for _ in range(2):
            with pytest.raises(ValueError, match="channels"):
                layer(wrong)
        assert checks == [x.shape, wrong.shape, wrong.shape]
