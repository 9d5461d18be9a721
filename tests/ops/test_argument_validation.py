"""The operators validate their own arguments (csrc/conv_args.cpp) and raise
ValueError or TypeError naming the offending argument, rather than an opaque
error from deep inside ATen."""

import pytest
import torch

import torchflip  # noqa: F401  (registers torch.ops.torchflip.*)

conv = torch.ops.torchflip.conv
conv_t = torch.ops.torchflip.conv_transpose


def _x():
    return torch.randn(1, 4, 5, 5)


def _w():
    return torch.randn(6, 2, 3, 3)  # groups=2 with _x()


def _wt():
    return torch.randn(4, 3, 3, 3)  # transposed, groups=2 with _x()


CONV_ERRORS = [
    # Integer dtypes behave as in torch.nn (tests/reliability/test_torch_parity.py).
    ("bool input", lambda: conv(_x().bool(), _w().bool(), None, [1], [0], [1], 2),
     TypeError, "numeric 'input'"),
    ("complex weight, real input", lambda: conv(_x(), _w().cfloat(), None, [1], [0], [1], 2),
     TypeError, "'weight' to have the dtype"),
    ("weight dtype", lambda: conv(_x(), _w().double(), None, [1], [0], [1], 2),
     TypeError, "'weight' to have the dtype"),
    ("bias dtype", lambda: conv(_x(), _w(), torch.randn(6).double(), [1], [0], [1], 2),
     TypeError, "'bias' to have the dtype"),
    ("bias shape", lambda: conv(_x(), _w(), torch.randn(5), [1], [0], [1], 2),
     ValueError, "'bias' of shape"),
    ("bias rank", lambda: conv(_x(), _w(), torch.randn(6, 1), [1], [0], [1], 2),
     ValueError, "'bias' of shape"),
    ("weight rank 2", lambda: conv(_x(), torch.randn(6, 2), None, [1], [0], [1], 2),
     ValueError, "'weight'"),
    ("weight rank 6", lambda: conv(_x(), torch.randn(6, 2, 1, 1, 1, 1), None, [1], [0], [1], 2),
     ValueError, "'weight'"),
    ("input rank differs", lambda: conv(_x(), torch.randn(6, 2, 3), None, [1], [0], [1], 2),
     ValueError, "'input'"),
    ("groups zero", lambda: conv(_x(), _w(), None, [1], [0], [1], 0), ValueError, "'groups'"),
    ("groups negative", lambda: conv(_x(), _w(), None, [1], [0], [1], -2),
     ValueError, "'groups'"),
    ("groups not dividing C_in", lambda: conv(_x(), _w(), None, [1], [0], [1], 3),
     ValueError, "'groups'"),
    ("groups not dividing C_out", lambda: conv(_x(), torch.randn(5, 2, 3, 3), None, [1], [0],
                                               [1], 2), ValueError, "'groups'"),
    ("weight C_in / groups", lambda: conv(_x(), _w(), None, [1], [0], [1], 1),
     ValueError, "'weight'"),
    ("stride zero", lambda: conv(_x(), _w(), None, [0], [0], [1], 2), ValueError, "'stride'"),
    ("stride negative", lambda: conv(_x(), _w(), None, [1, -1], [0], [1], 2),
     ValueError, "'stride'"),
    ("stride too many", lambda: conv(_x(), _w(), None, [1, 1, 1], [0], [1], 2),
     ValueError, "'stride'"),
    ("stride empty", lambda: conv(_x(), _w(), None, [], [0], [1], 2), ValueError, "'stride'"),
    ("padding negative", lambda: conv(_x(), _w(), None, [1], [-1], [1], 2),
     ValueError, "'padding'"),
    ("padding too many", lambda: conv(_x(), _w(), None, [1], [0, 0, 0], [1], 2),
     ValueError, "'padding'"),
    ("dilation zero", lambda: conv(_x(), _w(), None, [1], [0], [0], 2), ValueError, "'dilation'"),
    ("dilation too many", lambda: conv(_x(), _w(), None, [1], [0], [1, 1, 1], 2),
     ValueError, "'dilation'"),
    ("kernel larger than padded input", lambda: conv(_x(), _w(), None, [1], [0], [3], 2),
     ValueError, "kernel is larger"),
    ("empty kernel", lambda: conv(_x(), torch.randn(6, 2, 0, 3), None, [1], [0], [1], 2),
     ValueError, "non-empty kernel"),
    ("weight on another device", lambda: conv(_x(), _w().to("meta"), None, [1], [0], [1], 2),
     RuntimeError, "'weight' to be on the device"),
]

CONV_TRANSPOSE_ERRORS = [
    ("output_padding too large",
     lambda: conv_t(_x(), _wt(), None, [2], [0], [2], 2, [1]), ValueError, "'output_padding'"),
    ("output_padding negative",
     lambda: conv_t(_x(), _wt(), None, [2], [0], [-1], 2, [1]), ValueError, "'output_padding'"),
    ("output_padding too many",
     lambda: conv_t(_x(), _wt(), None, [2], [0], [1, 1, 1], 2, [1]),
     ValueError, "'output_padding'"),
    ("weight C_in", lambda: conv_t(_x(), torch.randn(3, 3, 3, 3), None, [1], [0], [0], 1, [1]),
     ValueError, "'weight'"),
    ("groups not dividing C_in",
     lambda: conv_t(_x(), _wt(), None, [1], [0], [0], 3, [1]), ValueError, "'groups'"),
    ("bias shape", lambda: conv_t(_x(), _wt(), torch.randn(3), [1], [0], [0], 2, [1]),
     ValueError, "'bias' of shape"),
    # An output of size 0 is allowed, as in torch.nn; a negative one is not.
    ("negative output", lambda: conv_t(_x(), torch.randn(4, 3, 1, 1), None, [1], [9], [0], 2,
                                       [1]),
     ValueError, "output size would be negative"),
    ("stride zero", lambda: conv_t(_x(), _wt(), None, [0], [0], [0], 2, [1]),
     ValueError, "'stride'"),
    ("weight dtype", lambda: conv_t(_x(), _wt().double(), None, [1], [0], [0], 2, [1]),
     TypeError, "'weight' to have the dtype"),
]


@pytest.mark.parametrize("call,error,message",
                         [c[1:] for c in CONV_ERRORS], ids=[c[0] for c in CONV_ERRORS])
def test_conv_rejects(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("call,error,message", [c[1:] for c in CONV_TRANSPOSE_ERRORS],
                         ids=[c[0] for c in CONV_TRANSPOSE_ERRORS])
def test_conv_transpose_rejects(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("op", [torch.ops.torchflip.conv, torch.ops.torchflip._conv])
def test_messages_name_the_operator(op):
    with pytest.raises(ValueError, match=r"^torchflip\.conv: "):
        op(_x(), _w(), None, [0], [0], [1], 2)


def test_backward_ops_validate_like_forward():
    x, w = _x(), _w()
    g = torch.randn(1, 6, 3, 3)
    with pytest.raises(ValueError, match="'stride'"):
        torch.ops.torchflip.conv_backward(g, x, w, [0], [0], [1], 2, [True, True, True])
    with pytest.raises(TypeError, match="'grad_output' to have the dtype"):
        torch.ops.torchflip.conv_backward(g.double(), x, w, [1], [0], [1], 2,
                                          [True, True, True])
