"""Seeded random invalid calls to the compiled operators and the functional API.

Each call starts from a random small convolution problem and applies one to
three random mutations (bad ranks, channel/group mismatches, zero, negative or
overflowing hyper-parameters, wrong lengths, kernels larger than the input,
empty dimensions, mismatched dtypes and devices, bad biases and grad_outputs),
then calls one entry point. The outcome is classified against torch (ATen's
convolution, or torch.nn.functional, on the flipped kernel, with the same
arguments):

* ``raised``: torchflip raised a Python exception (``stricter`` when torch
  accepted the call);
* ``valid``: both returned, with equal results (the mutation was harmless);
* ``accepted_invalid``: torchflip returned where torch raised;
* ``wrong_result``: both returned, with different results;
* a crash kills the process: the last ``start`` line names the call.

Run as a worker (one JSON line per call, flushed before each call starts)::

    python -m tests.reliability.invalid_calls --seed 0 --examples 400

The address space is capped (``--memory-gb``, default 6) so that a call
asking for absurd amounts of memory fails with an exception rather than
swapping the machine.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

HUGE_VALUES = (2**31, 2**62, 2**63 - 1)


@dataclass
class Call:
    """One fuzzed call: the entry point, its tensors and hyper-parameters."""

    entry: str  # op, backward, functional, functional_fft
    transposed: bool
    dims: int
    input: Any
    weight: Any
    bias: Any
    stride: Any
    padding: Any
    dilation: Any
    groups: Any
    output_padding: Any
    grad_output: Any = None
    mutations: list = field(default_factory=list)

    def describe(self) -> str:
        def show(v):
            if isinstance(v, torch.Tensor):
                return f"Tensor{tuple(v.shape)}:{str(v.dtype)[6:]}:{v.device.type}"
            return repr(v)

        parts = [f"{k}={show(getattr(self, k))}" for k in
                 ("input", "weight", "bias", "stride", "padding", "dilation", "groups")]
        if self.transposed:
            parts.append(f"output_padding={self.output_padding!r}")
        if self.entry == "backward":
            parts.append(f"grad_output={show(self.grad_output)}")
        family = "conv_transpose" if self.transposed else "conv"
        return f"{self.entry} {family}{self.dims}d({', '.join(parts)}) after {self.mutations}"


def _random_problem(rng: random.Random) -> Call:
    transposed = rng.random() < 0.4
    dims = rng.choice((1, 1, 2, 2, 3))
    entry = rng.choice(("op", "backward", "functional") + (() if transposed else ("functional_fft",)))
    groups = rng.randint(1, 3)
    c_in, c_out = groups * rng.randint(1, 2), groups * rng.randint(1, 2)
    kernel = [rng.randint(1, 3) for _ in range(dims)]
    size = [rng.randint(3, 6) for _ in range(dims)]
    x = torch.randn(rng.randint(1, 2), c_in, *size)
    if transposed:
        w = torch.randn(c_in, c_out // groups, *kernel)
    else:
        w = torch.randn(c_out, c_in // groups, *kernel)
    bias = torch.randn(c_out) if rng.random() < 0.6 else None
    stride = rng.randint(1, 2) if entry != "functional_fft" else 1
    return Call(entry, transposed, dims, x, w, bias, stride, rng.randint(0, 1), rng.randint(1, 2),
                groups, 0)


def _bad_int(rng: random.Random) -> int:
    return rng.choice((0, -1, -rng.randint(2, 5), rng.choice(HUGE_VALUES)))


def _wrong_length(rng: random.Random, dims: int, value: int = 1) -> tuple:
    return (value,) * rng.choice([n for n in (0, 2, 3, 4) if n != dims and n != 1])


def _mutate(c: Call, rng: random.Random) -> None:
    kind = rng.choice(MUTATIONS)
    try:
        kind(c, rng)
    except (IndexError, RuntimeError):
        # The mutation does not fit what earlier ones left (e.g. indexing an
        # empty dimension); the call keeps its other mutations.
        c.mutations.append(f"({kind.__name__} not applicable)")


def _m_input_rank(c, rng):
    c.input = c.input[None] if rng.random() < 0.5 else c.input[0]
    c.mutations.append("input rank")


def _m_weight_rank(c, rng):
    c.weight = c.weight[..., None] if rng.random() < 0.5 else c.weight[0]
    c.mutations.append("weight rank")


def _m_channels(c, rng):
    dim = 0 if c.transposed else 1
    extra = rng.choice((-1, 1, 2))
    size = max(0, c.weight.shape[dim] + extra)
    shape = list(c.weight.shape)
    shape[dim] = size
    c.weight = torch.randn(*shape)
    c.mutations.append(f"weight dim {dim} -> {size}")


def _m_groups(c, rng):
    c.groups = rng.choice((0, -1, 4, 5, 7, rng.choice(HUGE_VALUES)))
    c.mutations.append(f"groups={c.groups}")


def _m_hyper(name):
    def mutate(c, rng):
        r = rng.random()
        if r < 0.5:
            value = _bad_int(rng)
        elif r < 0.8:
            value = _wrong_length(rng, c.dims)
        else:
            value = tuple(_bad_int(rng) if i == c.dims - 1 else 1 for i in range(c.dims))
        setattr(c, name, value)
        c.mutations.append(f"{name}={value!r}")
    return mutate


def _m_padding_string(c, rng):
    c.padding = rng.choice(("same", "valid", "full", "SAME", ""))
    c.stride = rng.choice((1, 2))
    c.mutations.append(f"padding={c.padding!r}, stride={c.stride}")


def _m_output_padding(c, rng):
    r = rng.random()
    if r < 0.6:
        c.output_padding = rng.choice((1, 2, 3, -1, rng.choice(HUGE_VALUES)))
    else:
        c.output_padding = _wrong_length(rng, c.dims)
    c.mutations.append(f"output_padding={c.output_padding!r}")


def _m_kernel_too_large(c, rng):
    c.input = c.input[..., :1]
    c.padding = 0
    shape = list(c.weight.shape)
    shape[-1] = rng.randint(3, 6)
    c.weight = torch.randn(*shape)
    c.mutations.append(f"input length 1, kernel {shape[-1]}, padding 0")


def _m_empty(c, rng):
    where = rng.choice(("batch", "input channels", "weight dim 0", "spatial", "kernel"))
    if where == "batch":
        c.input = c.input[:0]
    elif where == "input channels":
        c.input = c.input[:, :0]
    elif where == "weight dim 0":
        c.weight = c.weight[:0]
    elif where == "spatial":
        c.input = c.input[..., :0]
    else:
        c.weight = c.weight[..., :0]
    c.mutations.append(f"empty {where}")


def _m_dtype(c, rng):
    which = rng.choice(("input", "weight", "bias", "all"))
    dtype = rng.choice((torch.float64, torch.float16, torch.bfloat16))
    for name in (("input", "weight", "bias") if which == "all" else (which,)):
        value = getattr(c, name)
        if isinstance(value, torch.Tensor):
            setattr(c, name, value.to(dtype))
    c.mutations.append(f"{which} dtype {dtype}")


def _m_bias(c, rng):
    out = c.weight.shape[1] * max(1, c.groups if isinstance(c.groups, int) else 1) \
        if c.transposed else c.weight.shape[0]
    c.bias = rng.choice((torch.randn(out + 1), torch.randn(max(0, out - 1)), torch.randn(out, 1),
                         torch.tensor(1.0), torch.randn(out).double()))
    c.mutations.append(f"bias {tuple(c.bias.shape)} {c.bias.dtype}")


def _m_device(c, rng):
    which = rng.choice(("input", "weight", "bias"))
    value = getattr(c, which)
    if isinstance(value, torch.Tensor):
        setattr(c, which, value.to("meta"))
    c.mutations.append(f"{which} on meta")


def _m_layout(c, rng):
    # Valid but unusual memory: an expanded (stride-0) weight, a non-contiguous input.
    if c.weight.dim() > 0 and c.weight.shape[0] > 0:
        c.weight = c.weight[:1].expand(c.weight.shape)
    if c.input.dim() >= 2:
        c.input = c.input.transpose(-1, -2).contiguous().transpose(-1, -2)
    c.mutations.append("expanded weight, non-contiguous input")


MUTATIONS = [_m_input_rank, _m_weight_rank, _m_channels, _m_groups, _m_hyper("stride"),
             _m_hyper("padding"), _m_hyper("dilation"), _m_padding_string, _m_output_padding,
             _m_kernel_too_large, _m_empty, _m_dtype, _m_bias, _m_device, _m_layout]


def random_call(rng: random.Random) -> Call:
    c = _random_problem(rng)
    for _ in range(rng.randint(1, 3)):
        _mutate(c, rng)
    if c.entry == "backward":
        # grad_output of the shape torch gives, when torch can compute it;
        # otherwise (or sometimes on purpose) a wrong one.
        status, out = _outcome(lambda: torch_forward(c))
        shape = list(out.shape) if status == "returned" else [1, 1] + [1] * c.dims
        if rng.random() < 0.2:
            shape[-1] += 1
            c.mutations.append("grad_output shape off by one")
        dtype = out.dtype if status == "returned" else torch.float32
        c.grad_output = torch.randn(shape).to(dtype)
    return c


# -- calling torchflip and torch -----------------------------------------------------------


def _as_list(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (tuple, list)):
        return list(value)
    return value


def _flip(w):
    return w.flip(list(range(2, w.dim()))) if isinstance(w, torch.Tensor) and w.dim() > 2 else w


def _mask(c: Call) -> list:
    return [True, True, c.bias is not None]


def torchflip_call(c: Call):
    import torchflip  # noqa: F401  (registers the operators)
    import torchflip.nn.functional as TF

    s, p, d, op = (_as_list(v) for v in (c.stride, c.padding, c.dilation, c.output_padding))
    ops = torch.ops.torchflip
    if c.entry == "op":
        if c.transposed:
            return ops.conv_transpose(c.input, c.weight, c.bias, s, p, op, c.groups, d)
        return ops.conv(c.input, c.weight, c.bias, s, p, d, c.groups)
    if c.entry == "backward":
        if c.transposed:
            return ops.conv_transpose_backward(c.grad_output, c.input, c.weight, s, p, op,
                                               c.groups, d, _mask(c))
        return ops.conv_backward(c.grad_output, c.input, c.weight, s, p, d, c.groups, _mask(c))
    extra = {"method": "fft"} if c.entry == "functional_fft" else {}
    if c.transposed:
        fn = getattr(TF, f"conv_transpose{c.dims}d")
        return fn(c.input, c.weight, c.bias, c.stride, c.padding, c.output_padding, c.groups,
                  c.dilation)
    return getattr(TF, f"conv{c.dims}d")(c.input, c.weight, c.bias, c.stride, c.padding,
                                        c.dilation, c.groups, **extra)


def torch_forward(c: Call):
    """The same forward call in torch with the flipped kernel: ATen's
    convolution for the operators, torch.nn.functional for the functional API."""
    import torch.nn.functional as F

    w = _flip(c.weight)
    if c.entry in ("op", "backward"):
        s, p, d, op = (_as_list(v) for v in (c.stride, c.padding, c.dilation, c.output_padding))
        return torch.ops.aten.convolution(c.input, w, c.bias, s, p, d, c.transposed,
                                          op if c.transposed else [0], c.groups)
    if c.transposed:
        return getattr(F, f"conv_transpose{c.dims}d")(c.input, w, c.bias, c.stride, c.padding,
                                                      c.output_padding, c.groups, c.dilation)
    return getattr(F, f"conv{c.dims}d")(c.input, w, c.bias, c.stride, c.padding, c.dilation,
                                        c.groups)


def torch_call(c: Call):
    if c.entry != "backward":
        return torch_forward(c)
    s, p, d, op = (_as_list(v) for v in (c.stride, c.padding, c.dilation, c.output_padding))
    bias_sizes = [c.bias.shape[0]] if c.bias is not None and c.bias.dim() == 1 else None
    gi, gw, gb = torch.ops.aten.convolution_backward(
        c.grad_output, c.input, _flip(c.weight), bias_sizes, s, p, d, c.transposed,
        op if c.transposed else [0], c.groups, _mask(c))
    return gi, _flip(gw), gb if c.bias is not None else None


def _outcome(fn):
    try:
        return "returned", fn()
    except Exception as error:  # noqa: BLE001  (any Python exception is an outcome)
        return "raised", error


def _same(ours, theirs, approximate: bool) -> bool:
    if isinstance(ours, (tuple, list)):
        return len(ours) == len(theirs) and all(
            _same(a, b, approximate) for a, b in zip(ours, theirs))
    if ours is None or theirs is None:
        return ours is None and theirs is None
    if ours.shape != theirs.shape or ours.dtype != theirs.dtype or ours.device != theirs.device:
        return False
    if ours.device.type == "meta":
        return True
    if approximate:
        scale = 1.0 + float(theirs.abs().max()) if theirs.numel() else 1.0
        return torch.allclose(ours.double(), theirs.double(), rtol=1e-3, atol=1e-4 * scale)
    return torch.allclose(ours.double(), theirs.double(), rtol=2e-2, atol=1e-2, equal_nan=True) \
        if ours.dtype in (torch.float16, torch.bfloat16) else \
        torch.allclose(ours, theirs, equal_nan=True)


def classify(c: Call) -> dict:
    ours_status, ours = _outcome(lambda: torchflip_call(c))
    theirs_status, theirs = _outcome(lambda: torch_call(c))
    record = dict(call=c.describe())
    if ours_status == "raised":
        record.update(verdict="stricter" if theirs_status == "returned" else "raised",
                      error=f"{type(ours).__name__}: {str(ours).splitlines()[0][:300]}")
    elif theirs_status == "raised":
        record.update(verdict="accepted_invalid",
                      torch_error=f"{type(theirs).__name__}: {str(theirs).splitlines()[0][:300]}")
    elif _same(ours, theirs, approximate=c.entry == "functional_fft"):
        record.update(verdict="valid")
    else:
        record.update(verdict="wrong_result")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--memory-gb", type=float, default=6.0)
    args = parser.parse_args(argv)
    limit = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    import torchflip  # noqa: F401

    rng = random.Random(args.seed)
    for index in range(args.examples):
        torch.manual_seed(args.seed * 100_003 + index)
        call = random_call(rng)
        print(json.dumps(dict(start=index, call=call.describe())), flush=True)
        record = classify(call)
        record["index"] = index
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
