"""torch.ops.torchflip.conv_backward / conv_transpose_backward and their
autograd-free twins: (grad_input, grad_weight, grad_bias) for the entries of
output_mask, None for the others, against autograd through the references."""

import itertools

import pytest
import torch

import torchflip  # noqa: F401  (registers torch.ops.torchflip.*)
from tests.reference import torch_conv, torch_conv_transpose

MASKS = list(itertools.product([True, False], repeat=3))
MASK_IDS = ["".join("1" if m else "0" for m in mask) for mask in MASKS]

# Hyper-parameters differing per dimension, grouped, per dimensionality.
CONV = {
    1: dict(size=(11,), kernel=(4,), stride=(2,), padding=(1,), dilation=(2,)),
    2: dict(size=(7, 8), kernel=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    3: dict(size=(5, 6, 5), kernel=(2, 3, 2), stride=(1, 2, 1), padding=(0, 1, 1),
            dilation=(2, 1, 1)),
}
TRANSPOSE = {
    1: dict(size=(5,), kernel=(4,), stride=(3,), padding=(1,), output_padding=(2,),
            dilation=(1,)),
    2: dict(size=(4, 5), kernel=(3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 1),
            dilation=(1, 2)),
    3: dict(size=(3, 4, 3), kernel=(2, 3, 2), stride=(2, 1, 1), padding=(0, 1, 1),
            output_padding=(1, 0, 0), dilation=(1, 1, 1)),
}
GROUPS = 2


def _conv_problem(dims, dtype):
    p = CONV[dims]
    x = torch.randn(2, 2 * GROUPS, *p["size"], dtype=dtype)
    w = torch.randn(3 * GROUPS, 2, *p["kernel"], dtype=dtype)
    hyper = (list(p["stride"]), list(p["padding"]), list(p["dilation"]), GROUPS)

    def reference(x, w, b):
        return torch_conv(x, w, b, p["stride"], p["padding"], p["dilation"], GROUPS)

    def call(op, g, x, w, mask):
        return op(g, x, w, *hyper, list(mask))

    return x, w, 3 * GROUPS, reference, call


def _transpose_problem(dims, dtype):
    p = TRANSPOSE[dims]
    x = torch.randn(2, 2 * GROUPS, *p["size"], dtype=dtype)
    w = torch.randn(2 * GROUPS, 3, *p["kernel"], dtype=dtype)

    def reference(x, w, b):
        return torch_conv_transpose(x, w, b, p["stride"], p["padding"], p["output_padding"],
                                    GROUPS, p["dilation"])

    def call(op, g, x, w, mask):
        return op(g, x, w, list(p["stride"]), list(p["padding"]), list(p["output_padding"]),
                  GROUPS, list(p["dilation"]), list(mask))

    return x, w, 3 * GROUPS, reference, call


FAMILIES = {
    "conv": (_conv_problem, [torch.ops.torchflip.conv_backward,
                             torch.ops.torchflip._conv_backward]),
    "conv_transpose": (_transpose_problem, [torch.ops.torchflip.conv_transpose_backward,
                                            torch.ops.torchflip._conv_transpose_backward]),
}
OP_CASES = [(family, op) for family, (_, ops) in FAMILIES.items() for op in ops]
OP_IDS = [str(op).split(".")[-1] for _, op in OP_CASES]


def _reference_grads(reference, x, w, out_channels, g):
    x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
    b = torch.zeros(out_channels, dtype=x.dtype, requires_grad=True)
    return torch.autograd.grad(reference(x, w, b), (x, w, b), g)


@pytest.mark.parametrize("mask", MASKS, ids=MASK_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("family,op", OP_CASES, ids=OP_IDS)
def test_masked_gradients_match_autograd_of_reference(family, op, dims, dtype, mask):
    make, _ = FAMILIES[family]
    x, w, out_channels, reference, call = make(dims, dtype)
    g = torch.randn_like(reference(x, w, None))
    grads = call(op, g, x, w, mask)
    expected = _reference_grads(reference, x, w, out_channels, g)
    names = ("grad_input", "grad_weight", "grad_bias")
    for name, got, want, requested in zip(names, grads, expected, mask):
        if requested:
            assert got is not None, f"{name} requested but None"
            torch.testing.assert_close(got, want, msg=lambda m: f"{name}: {m}")
        else:
            assert got is None, f"{name} not requested but returned shape {tuple(got.shape)}"


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_conv_grad_input_is_conv_transpose(dims):
    """The adjoint relation the two operators promise: d<conv(x, w), g>/dx is
    conv_transpose(g, w) with the same hyper-parameters (output_padding
    restoring the positions the stride skips)."""
    x, w, _, reference, call = _conv_problem(dims, torch.float64)
    p = CONV[dims]
    g = torch.randn_like(reference(x, w, None))
    grad_input = call(torch.ops.torchflip.conv_backward, g, x, w, (True, False, False))[0]
    full = [(m - 1) * s - 2 * pad + d * (k - 1) + 1 for m, s, pad, d, k in
            zip(g.shape[2:], p["stride"], p["padding"], p["dilation"], p["kernel"])]
    output_padding = [n - f for n, f in zip(p["size"], full)]
    transposed = torch.ops.torchflip.conv_transpose(
        g, w, None, list(p["stride"]), list(p["padding"]), output_padding, GROUPS,
        list(p["dilation"]))
    torch.testing.assert_close(grad_input, transposed)


@pytest.mark.parametrize("family,op", OP_CASES, ids=OP_IDS)
def test_rejects_grad_output_of_wrong_shape(family, op):
    make, _ = FAMILIES[family]
    x, w, _, reference, call = make(2, torch.float32)
    g = torch.randn_like(reference(x, w, None))
    with pytest.raises(ValueError, match="grad_output"):
        call(op, g[..., :-1], x, w, (True, True, True))
