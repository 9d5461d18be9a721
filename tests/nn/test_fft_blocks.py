"""The FFT engine's ways of holding less memory, each forced on small layers
and checked against the reference (torch.nn.functional with the flipped
weight): blocks of output channels, transforms in chunks, and overlap-save
for long 1-D signals. Values, gradients of every mask, and gradients of
gradients (gradgradcheck, float64)."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from torchflip.nn import _dft_matrix as dft_matrix
from torchflip.nn import _fft_conv

TORCH_CONV = {1: F.conv1d, 2: F.conv2d}


def _reference(x, w, b, padding, dilation, groups):
    return TORCH_CONV[x.dim() - 2](x, w.flip(list(range(2, w.dim()))), b, 1, padding, dilation,
                                   groups)


def _check_against_reference(x, w, b, padding, dilation, groups):
    """fft_forward and fft_backward (every gradient mask) against autograd
    through the reference."""
    dims = x.dim() - 2
    pad, dil = [padding] * dims, [dilation] * dims
    ref = _reference(x, w, b, padding, dilation, groups)
    out = _fft_conv.fft_forward(x, w, b, pad, dil, groups)
    torch.testing.assert_close(out, ref)
    assert out.is_contiguous()  # as torch's convolution returns it
    g = torch.randn_like(ref)
    expected = torch.autograd.grad(ref, (x, w, b), g)
    for mask in itertools.product([True, False], repeat=3):
        got = _fft_conv.fft_backward(g, x, w, pad, dil, groups, mask)
        for wanted, value, want in zip(mask, got, expected):
            if wanted:
                torch.testing.assert_close(value, want)
            else:
                assert value is None


def _operands(n, cin, cout, size, k, groups, dims=1):
    x = torch.randn((n, cin) + (size,) * dims, dtype=torch.float64, requires_grad=True)
    w = torch.randn((cout, cin // groups) + (k,) * dims, dtype=torch.float64,
                    requires_grad=True)
    b = torch.randn(cout, dtype=torch.float64, requires_grad=True)
    return x, w, b


@pytest.fixture
def small_segments(monkeypatch):
    """Overlap-save from segments of 16 samples, so that small signals take it."""
    monkeypatch.setattr(_fft_conv, "OVERLAP_SAVE_MIN_LENGTH", 16)


# n, C_in, C_out, length, kernel, padding, dilation, groups
OVERLAP_SAVE_CASES = [
    (1, 1, 4, 200, 5, 2, 1, 1),      # a filter bank over one signal, 'same'
    (1, 1, 3, 203, 4, 0, 1, 1),      # 'valid', a partial last segment
    (2, 1, 2, 150, 3, 7, 2, 1),      # two samples, dilation, padding beyond the kernel
    (1, 2, 4, 180, 5, 4, 1, 2),      # groups
    (3, 1, 1, 96, 1, 0, 1, 1),       # a one-tap kernel: segments do not overlap
]


@pytest.fixture(params=["one block", "blocks"])
def segment_blocks(request, monkeypatch):
    """Records the forward passes that took every segment in one block
    ('forward'), and the backward passes ('backward') with each chunk of
    segments they transformed ('chunk'); 'blocks' forbids the forward
    pass's one block and gives the backward pass one segment a chunk."""
    if request.param == "blocks":
        monkeypatch.setattr(_fft_conv, "SEGMENTS_ONE_BLOCK_BYTES", 0)
        monkeypatch.setattr(_fft_conv, "WHOLE_LAYER_BYTES", 0)
        monkeypatch.setattr(_fft_conv, "SEGMENT_GRADIENTS_CHUNK_BYTES", 0)
    calls = []
    for name, mark in (("_segments_in_one_block", "forward"),
                       ("_overlap_save_backward", "backward"), ("_gradient_segments", "chunk")):
        spied = getattr(_fft_conv, name)
        monkeypatch.setattr(_fft_conv, name,
                            lambda *a, f=spied, m=mark: calls.append(m) or f(*a))
    return request.param, calls


def _check_passes(segment_blocks, backward: bool = True):
    """The forward pass in one block or not as the fixture asked; backward
    passes (wanted) one chunk each or several."""
    path, calls = segment_blocks
    assert ("forward" in calls) == (path == "one block")
    assert ("backward" in calls) == backward
    if backward:
        chunks, passes = calls.count("chunk"), calls.count("backward")
        assert chunks <= passes if path == "one block" else chunks > passes


@pytest.mark.parametrize("case", OVERLAP_SAVE_CASES, ids=str)
def test_overlap_save_matches_reference(case, small_segments, segment_blocks):
    n, cin, cout, size, k, padding, dilation, groups = case
    x, w, b = _operands(n, cin, cout, size, k, groups)
    assert _fft_conv._overlap_save_hop(x, w, [padding], [dilation]) is not None
    _check_against_reference(x, w, b, padding, dilation, groups)
    _check_passes(segment_blocks)


def test_overlap_save_without_bias_matches_reference(small_segments, segment_blocks):
    x, w, _ = _operands(1, 1, 3, 203, 4, 1)
    ref = _reference(x, w, None, 0, 1, 1)
    torch.testing.assert_close(_fft_conv.fft_forward(x, w, None, [0], [1], 1), ref)
    _check_passes(segment_blocks, backward=False)


def test_overlap_save_is_taken_only_for_few_long_rows():
    w = torch.randn(4, 1, 1025)
    long_signal = torch.randn(1, 1, 65536)
    assert _fft_conv._overlap_save_hop(long_signal, w, [512], [1]) is not None
    # Too short for OVERLAP_SAVE_MIN_SEGMENTS segments of about four kernels.
    assert _fft_conv._overlap_save_hop(torch.randn(1, 1, 8192), w, [512], [1]) is None
    # Enough rows to batch the whole-length transforms.
    many_rows = torch.randn(2, 2, 65536)
    assert _fft_conv._overlap_save_hop(many_rows, torch.randn(4, 2, 1025), [512], [1]) is None
    assert _fft_conv._overlap_save_hop(torch.randn(1, 1, 64, 64), torch.randn(1, 1, 5, 5),
                                       [2, 2], [1, 1]) is None


def test_filter_banks_take_overlap_save_forward_only(small_segments):
    # Many filters per signal: their whole-length weight spectra would
    # dominate the forward pass.
    x, w, b = _operands(2, 4, 4, 400, 9, 1)
    assert _fft_conv._overlap_save_hop(x, w, [4], [1]) is None
    hop = _fft_conv._filter_bank_hop(x, w, [4], [1], 1)
    assert hop is not None
    _check_against_reference(x, w, b, 4, 1, 1)


def test_filter_bank_rule_keeps_whole_transforms_where_they_cost_less():
    # 4 -> 4 filters of 1025 taps: segments are estimated at 0.88 of the
    # whole transforms' work, over OVERLAP_SAVE_BANK_SHARE.
    x, w = torch.empty(2, 4, 16384), torch.empty(4, 4, 1025)
    assert _fft_conv._filter_bank_hop(x, w, [512], [1], 1) is None
    assert _fft_conv._filter_bank_hop(torch.empty(2, 16, 16384), torch.empty(16, 16, 1025),
                                      [512], [1], 1) is not None
    # 2-D layers never segment.
    assert _fft_conv._filter_bank_hop(torch.randn(1, 4, 64, 64), torch.randn(4, 4, 5, 5),
                                      [2, 2], [1, 1], 1) is None


def test_overlap_save_differentiates_twice(small_segments, segment_blocks):
    x, w, b = _operands(1, 1, 2, 70, 3, 1, 1)

    def conv(x, w, b):
        from torchflip.nn._engines import TwoEngineConv
        from torchflip.nn._method import Engines

        return TwoEngineConv.apply(x, w, b, Engines("fft", "fft"), (1,), (2,), 1)

    assert _fft_conv._overlap_save_hop(x, w, [1], [2]) is not None
    torch.testing.assert_close(conv(x, w, b), _reference(x, w, b, 1, 2, 1))
    assert torch.autograd.gradcheck(conv, (x, w, b))
    assert torch.autograd.gradgradcheck(conv, (x, w, b))
    _check_passes(segment_blocks)


@pytest.fixture(params=["matrix", "fft"])
def axis_transform(request, monkeypatch):
    """Both ways of transforming a short non-last axis: the DFT matrix
    product (torchflip/nn/_dft_matrix.py), and the FFT, which the matrix
    replaces up to MATRIX_MAX_LOG_RATIO log2 n taps."""
    if request.param == "fft":
        monkeypatch.setattr(dft_matrix, "MATRIX_MAX_LOG_RATIO", 0)
    return request.param


@pytest.fixture
def tiny_budget(monkeypatch):
    """Blocks and chunks as small as the engine makes them."""
    monkeypatch.setattr(_fft_conv, "BLOCK_MIN_BYTES", 1)
    monkeypatch.setattr(_fft_conv, "BLOCK_INPUT_SHARE", 1 << 40)
    monkeypatch.setattr(_fft_conv, "WHOLE_LAYER_BYTES", 0)
    monkeypatch.setattr(_fft_conv, "SEGMENTS_ONE_BLOCK_BYTES", 0)
    monkeypatch.setattr(_fft_conv, "SEGMENT_GRADIENTS_CHUNK_BYTES", 0)
    monkeypatch.setattr(_fft_conv, "CHUNK_MIN_ROWS", 1)


@pytest.mark.parametrize("dims", [1, 2])
def test_blocks_of_output_channels_match_reference(dims, tiny_budget, axis_transform):
    # One input channel per group and one sample: only outputs can split.
    x, w, b = _operands(1, 2, 6, 12, 3, 2, dims)
    lengths = _fft_conv.transform_lengths(x.shape[2:], [1] * dims, [3] * dims)
    blocks = _fft_conv._blocks(x, 3, lengths, 2, _fft_conv._budget(x))
    assert blocks.outputs < 3 and blocks.channels == 1 and blocks.samples == 1
    _check_against_reference(x, w, b, 1, 1, 2)


def test_chunked_transforms_match_whole_ones(tiny_budget):
    t = torch.randn(3, 2, 5, 7, dtype=torch.float64)
    lengths = [8, 12]
    whole = torch.fft.rfftn(t, s=lengths).flatten(-2)
    chunked = _fft_conv._spectrum(t, lengths, budget=1)
    torch.testing.assert_close(chunked, whole)
    out = torch.empty(3, 2, 4, 6, dtype=torch.float64)
    _fft_conv._inverse_into(out, whole, lengths, [-1, 2], [4, 6], budget=1)
    inverse = torch.fft.irfftn(whole.unflatten(-1, (8, 7)), s=lengths)
    expected = inverse.roll(1, -2)[..., :4, 2:8]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("shape, lengths", [((2, 3, 3, 7), [16, 12]),
                                            ((2, 2, 3, 4), [9, 10, 8])])
def test_transform_of_few_rows_matches_rfftn(shape, lengths, axis_transform):
    # Few rows against the transform length: one axis at a time, each by a
    # matrix product, or transformed as the last axis and transposed back.
    t = torch.randn(shape, dtype=torch.float64)
    dims = list(range(-len(lengths), 0))
    assert 2 * math.prod(shape[-len(lengths):-1]) <= math.prod(lengths[:-1])
    torch.testing.assert_close(_fft_conv._rfft(t, lengths),
                               torch.fft.rfftn(t, s=lengths, dim=dims))


def test_chunks_take_a_map_per_thread(threads, tiny_budget):
    t = torch.randn(7, 5, 6, dtype=torch.float64)
    lengths = [8, 12]
    chunk_bytes = _fft_conv._chunk_bytes(100, 1, lengths, t.device)
    chunks = list(_fft_conv._leading_chunks((7,), 100, chunk_bytes))
    assert [c[0].stop - c[0].start for c in chunks] == [min(threads, 7 - i)
                                                     for i in range(0, 7, threads)]
    torch.testing.assert_close(_fft_conv._spectrum(t, lengths, budget=1),
                               torch.fft.rfftn(t, s=lengths).flatten(-2))


def test_cyclic_window_wraps_without_an_index():
    t = torch.arange(10.0)
    torch.testing.assert_close(_fft_conv._cyclic_window(t, 0, -3, 5),
                               torch.tensor([7.0, 8.0, 9.0, 0.0, 1.0]))
    torch.testing.assert_close(_fft_conv._cyclic_window(t, 0, 8, 4),
                               torch.tensor([8.0, 9.0, 0.0, 1.0]))
    assert _fft_conv._cyclic_window(t, 0, 2, 5).data_ptr() == t[2:].data_ptr()


def test_small_layers_are_one_block_and_larger_ones_split(monkeypatch):
    # Blocks of a 256-byte budget, but a layer whose spectra (input, output
    # and weight together) fit WHOLE_LAYER_BYTES is one block all the same.
    monkeypatch.setattr(_fft_conv, "BLOCK_MIN_BYTES", 256)
    monkeypatch.setattr(_fft_conv, "BLOCK_INPUT_SHARE", 1 << 40)
    x, w, b = _operands(3, 4, 6, 30, 5, 2)
    lengths = _fft_conv.transform_lengths(x.shape[2:], [2], [5])
    map_bytes = (lengths[0] // 2 + 1) * 16
    whole = (3 * (2 + 3) + 3 * 2) * 2 * map_bytes
    monkeypatch.setattr(_fft_conv, "WHOLE_LAYER_BYTES", whole)
    assert _fft_conv._blocks(x, 3, lengths, 2, _fft_conv._budget(x)) == (2, 3, 2, 3)
    monkeypatch.setattr(_fft_conv, "WHOLE_LAYER_BYTES", whole - 1)
    assert _fft_conv._blocks(x, 3, lengths, 2, _fft_conv._budget(x)) != (2, 3, 2, 3)
    _check_against_reference(x, w, b, 2, 1, 2)


@pytest.mark.parametrize("start, step, rows, cols", [
    ((-3, 9), (1, 1), (2, 13), 4),
    ((-7, 4), (2, 3), (3, 13), 3),
    ((5, -2), (3, 2), (2, 8), 4),
])
def test_inverse_windows_wrap_and_step_like_indexing(start, step, rows, cols, tiny_budget,
                                                    axis_transform):
    # Both paths of the inverse (one axis at a time for few rows, whole for
    # most), against indices taken modulo the lengths.
    lengths = [25, 10]
    spectrum = torch.randn(2, 3, 25 * 6, dtype=torch.complex128)
    full = torch.fft.irfftn(spectrum.unflatten(-1, (25, 6)), s=lengths)
    for count in rows:
        out = torch.empty(2, 3, count, cols, dtype=torch.float64)
        size = [step[0] * (count - 1) + 1, step[1] * (cols - 1) + 1]
        _fft_conv._inverse_into(out, spectrum, lengths, list(start), size, budget=1,
                                step=list(step))
        i = (start[0] + step[0] * torch.arange(count)) % 25
        j = (start[1] + step[1] * torch.arange(cols)) % 10
        torch.testing.assert_close(out, full[:, :, i][:, :, :, j])


def _keeper(store: dict, calls: list):
    """A WeightSpectra that keeps every spectrum it is asked for."""
    def keep(key, nbytes, compute):
        if key not in store:
            calls.append(key)
            store[key] = compute()
            assert store[key].nbytes == nbytes
        return store[key]
    return keep


@pytest.mark.parametrize("case", [
    (2, 4, 6, 2, 17, 3, 2, 2, 1),       # 2-D, groups, dilation, padding beyond the kernel
    (3, 4, 4, 1, 40, 5, 2, 1, 2),       # 1-D, two groups
    (1, 1, 4, 1, 200, 5, 2, 1, 1),      # a filter bank over one signal (overlap-save)
    (1, 1, 3, 1, 203, 4, 0, 1, 1),      # overlap-save with a shorter last segment
], ids=str)
def test_kept_weight_spectra_serve_every_block(case, tiny_budget, small_segments,
                                               axis_transform):
    _check_kept_weight_spectra(case)


@pytest.mark.parametrize("case", [
    (1, 1, 4, 1, 200, 5, 2, 1, 1),
    (1, 2, 4, 1, 203, 4, 0, 1, 2),
], ids=str)
def test_kept_weight_spectra_serve_segments_in_one_block(case, small_segments, segment_blocks):
    _check_kept_weight_spectra(case)
    _check_passes(segment_blocks)


def _check_kept_weight_spectra(case):
    # The engine reads every block of the weight's spectrum from the kept
    # spectrum: values and input gradients are the reference's, a second call
    # transforms no weight, and doubling the kept spectra doubles the result.
    n, cin, cout, dims, size, k, padding, dilation, groups = case
    x, w, b = _operands(n, cin, cout, size, k, groups, dims)
    pad, dil = [padding] * dims, [dilation] * dims
    if n * cin < _fft_conv.OVERLAP_SAVE_ROWS:
        assert _fft_conv._overlap_save_hop(x, w, pad, dil) is not None
    store, calls = {}, []
    keep = _keeper(store, calls)
    ref = _reference(x, w, b, padding, dilation, groups)
    g = torch.randn_like(ref)
    expected = torch.autograd.grad(ref, x, g)[0]
    mask = [True, False, False]
    torch.testing.assert_close(_fft_conv.fft_forward(x, w, b, pad, dil, groups, keep), ref)
    torch.testing.assert_close(_fft_conv.fft_backward(g, x, w, pad, dil, groups, mask, keep)[0],
                               expected)
    transforms = len(calls)
    assert transforms >= 1
    torch.testing.assert_close(_fft_conv.fft_forward(x, w, b, pad, dil, groups, keep), ref)
    assert len(calls) == transforms
    for spectrum in store.values():
        spectrum.mul_(2)
    bias = b.reshape((1, -1) + (1,) * dims)
    torch.testing.assert_close(_fft_conv.fft_forward(x, w, b, pad, dil, groups, keep),
                               2 * (ref - bias) + bias)
    torch.testing.assert_close(_fft_conv.fft_backward(g, x, w, pad, dil, groups, mask, keep)[0],
                               2 * expected)


@pytest.mark.parametrize("x_size, w_size, length", [(16, 5, 16), (6, 9, 16), (12, 12, 20)])
def test_joint_spectra_are_each_operands_spectrum(x_size, w_size, length, monkeypatch):
    """Input and weight rows transformed in one call give each operand's own
    real FFT (an operand shorter than the other, or than the length, is
    zero-padded), and nothing where the transform would be chunked."""
    monkeypatch.setattr(_fft_conv, "JOINT_MIN_LENGTH", 1)
    x = torch.randn(3, 1, 2, x_size, dtype=torch.float64).unfold(-1, x_size, 1)[..., 0, :]
    w = torch.randn(1, 4, 2, w_size, dtype=torch.float64)
    x_hat, w_hat = _fft_conv._joint_spectra(x, w, length, budget=1 << 20)
    torch.testing.assert_close(x_hat, torch.fft.rfft(x, n=length))
    torch.testing.assert_close(w_hat, torch.fft.rfft(w, n=length))
    monkeypatch.setattr(_fft_conv, "JOINT_MIN_LENGTH", length + 1)
    assert _fft_conv._joint_spectra(x, w, length, budget=1 << 20) is None
    monkeypatch.setattr(_fft_conv, "JOINT_MIN_LENGTH", 1)
    monkeypatch.setattr(_fft_conv, "_transformed_whole", lambda *args: False)
    assert _fft_conv._joint_spectra(x, w, length, budget=1 << 20) is None


@pytest.mark.parametrize("case", OVERLAP_SAVE_CASES[:4])
def test_overlap_save_with_joint_spectra_matches_reference(case, small_segments, monkeypatch):
    """The forward pass in blocks of segments, with input and weight
    transformed in one call (its minimum length lowered so that small
    segments take it)."""
    monkeypatch.setattr(_fft_conv, "JOINT_MIN_LENGTH", 1)
    monkeypatch.setattr(_fft_conv, "_one_block_segments", lambda *a: False)
    calls = []
    joint = _fft_conv._joint_spectra
    monkeypatch.setattr(_fft_conv, "_joint_spectra", lambda *a: calls.append(1) or joint(*a))
    n, cin, cout, length, k, padding, dilation, groups = case
    _check_against_reference(*_operands(n, cin, cout, length, k, groups), padding, dilation,
                             groups)
    assert calls


def test_views_and_chunks_that_take_everything_are_the_tensor_itself():
    """A narrow over a whole dimension and a chunk over every map return the
    tensor unchanged (no ATen call); partial ones are the usual views."""
    t = torch.randn(4, 6)
    assert _fft_conv._narrow(t, 1, 0, 6) is t
    torch.testing.assert_close(_fft_conv._narrow(t, 1, 2, 3), t[:, 2:5])
    assert list(_fft_conv._leading_chunks((4, 6), 10, 240)) == [None]
    assert _fft_conv._part(t, None) is t
    chunks = list(_fft_conv._leading_chunks((4, 6), 10, 120))
    assert chunks == [(slice(0, 2),), (slice(2, 4),)]
    torch.testing.assert_close(torch.cat([_fft_conv._part(t, c) for c in chunks]), t)


def test_segment_gradients_take_chunks_of_the_budget(small_segments, monkeypatch):
    # Spectra over WHOLE_LAYER_BYTES: chunks of segments whose rows (output
    # gradient and signal, the weight's with the first) fit the chunk budget.
    x, w, b = _operands(1, 1, 2, 200, 5, 1)
    hop = _fft_conv._overlap_save_hop(x, w, [2], [1])
    segment = hop + 4
    count = -(-200 // hop)
    map_bytes = _fft_conv._map_bytes([segment], x.element_size())
    monkeypatch.setattr(_fft_conv, "WHOLE_LAYER_BYTES", 0)
    # Three rows a segment (two output channels, one signal), two of weight.
    monkeypatch.setattr(_fft_conv, "SEGMENT_GRADIENTS_CHUNK_BYTES", (2 + 2 * 3) * map_bytes)
    chunks = []
    spied = _fft_conv._gradient_segments
    monkeypatch.setattr(_fft_conv, "_gradient_segments",
                        lambda rows, *a: chunks.append(rows.shape[2]) or spied(rows, *a))
    ref = _reference(x, w, b, 2, 1, 1)
    g = torch.randn_like(ref)
    expected = torch.autograd.grad(ref, (x, w), g)
    got = _fft_conv.fft_backward(g, x, w, [2], [1], 1, [True, True, False])
    torch.testing.assert_close(got[0], expected[0])
    torch.testing.assert_close(got[1], expected[1])
    assert count > 2 and chunks == [2] * (count // 2) + [1] * (count % 2)
