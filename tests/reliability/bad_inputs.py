"""An independent list of bad inputs for every public torchflip entry point.

Each bad input is a change to a valid problem (:mod:`tests.reliability.entry_points`)
that makes the call invalid, applied to each entry point it fits: the compiled
operators and their underscored twins, the backward operators, the functional
API and the layers (forward with and without gradients), for 1-, 2- and 3-D.
Layer constructors and the whole-model converters have their own lists.

A call passes when it raises a Python exception (no crash, no result) whose
message names the offending argument (``arguments``: one of these words must
appear) and says what was expected or what was given (``details``: one of these
regular expressions must match). The list was written from torch.nn's
documented contract, not from torchflip's messages.

Run as a script it calls everything in this process and prints one JSON line
per call (flushed before the call starts, so a crash shows which call killed
the process), then a summary::

    python -m tests.reliability.bad_inputs
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

import torchflip
import torchflip.nn as tnn
from tests.reliability.entry_points import (
    FFT_KINDS,
    KINDS,
    Problem,
    applies,
    base_problem,
    entry_point,
    outcome,
)

HUGE = 2**62  # overflows int64 once multiplied by a small size


def shape_pattern(t) -> str:
    """Regex matching the shape of ``t`` as torch and torchflip print it:
    [2, 3], (2, 3) or torch.Size([2, 3])."""
    sizes = r",\s*".join(str(s) for s in t.shape)
    return r"[\[(]" + sizes + r",?[\])]"


def _per_dim(p: Problem, value, last=None) -> tuple:
    """`value` in every spatial dimension, or only in the last one."""
    if last is None:
        return (value,) * p.dims
    return (value,) * (p.dims - 1) + (last,)


@dataclass(frozen=True)
class BadInput:
    name: str
    change: Callable[[Problem], Problem]
    arguments: Sequence[str]
    details: Callable[[Problem], Sequence[str]]
    families: Sequence[str] = ("conv", "transposed")
    kinds: Sequence[str] = KINDS


def _constant(value):
    return lambda p: value


def _b(name, change, arguments, details, families=("conv", "transposed"), kinds=KINDS):
    if isinstance(arguments, str):
        arguments = (arguments,)
    if not callable(details):
        details = _constant(tuple(details))
    return BadInput(name, change, tuple(arguments), details, tuple(families), tuple(kinds))


OPS = ("op", "_op")
BACKWARD = ("backward", "_backward")
NOT_BACKWARD = tuple(k for k in KINDS if k not in BACKWARD)
PYTHON_API = ("functional", "layer", "layer_no_grad") + FFT_KINDS
# torch.nn.functional accepts mixing a 'meta' tensor with CPU tensors, and
# layers under no_grad call torch.nn.functional, so device mismatches are bad
# inputs only for the entry points that reach torchflip's operators.
DEVICE_CHECKED = ("op", "_op", "backward", "_backward", "functional", "layer") + FFT_KINDS

POSITIVE = (r"positive", r"greater than (zero|0)", r"non-positive", r"at least 1", r"> ?0")
NON_NEGATIVE = (r"non-negative", r"negative .* not supported", r">= ?0")
LENGTH = (r"\b1 or \d\b", r"\d+ values?", r"tuple of \d", r"list of \d", r"\d+ ints",
          r"single integer")
TYPE_WORDS = (r"Tensor", r"\bint\b", r"List\[int\]", r"tuple", r"float", r"str", r"NoneType",
              r"list")

TENSOR_INPUTS = [
    _b("input is a list", lambda p: p.replace(input=p.input.tolist()), "input",
       (r"Tensor", r"list")),
    _b("input is None", lambda p: p.replace(input=None), "input",
       (r"Tensor", r"None", r"undefined")),
    _b("weight is a list", lambda p: p.replace(weight=p.weight.tolist()), "weight",
       (r"Tensor", r"list", r"Parameter")),
    _b("bias is a list", lambda p: p.replace(bias=p.bias.tolist()), "bias",
       (r"Tensor", r"list", r"Parameter"), kinds=NOT_BACKWARD),
    _b("input rank too low", lambda p: p.replace(input=p.input[0, 0]), "input",
       lambda p: (shape_pattern(p.input), r"\d-?D", r"\d+ dimensions")),
    _b("input rank too high", lambda p: p.replace(input=p.input[None]), "input",
       lambda p: (shape_pattern(p.input), r"\d-?D", r"\d+ dimensions")),
    _b("weight rank too low", lambda p: p.replace(weight=p.weight[0]), "weight",
       lambda p: (shape_pattern(p.weight), r"\d+ dimensions")),
    _b("weight rank too high", lambda p: p.replace(weight=p.weight[..., None]), "weight",
       lambda p: (shape_pattern(p.weight), r"\d+ dimensions")),
    _b("bias of rank 2", lambda p: p.replace(bias=p.bias[:, None]), "bias",
       lambda p: (shape_pattern(p.bias),), kinds=NOT_BACKWARD),
    _b("bias of rank 0", lambda p: p.replace(bias=p.bias[0]), "bias",
       lambda p: (shape_pattern(p.bias), r"1-dimensional"), kinds=NOT_BACKWARD),
    _b("bias of the wrong length", lambda p: p.replace(bias=p.bias[:-1]), "bias",
       lambda p: (shape_pattern(p.bias), r"\b5\b"), kinds=NOT_BACKWARD),
    _b("bias of another dtype", lambda p: p.replace(bias=p.bias.double()), "bias",
       (r"[Dd]ouble|float64",), kinds=NOT_BACKWARD),
    _b("weight of another dtype", lambda p: p.replace(weight=p.weight.double()),
       ("weight",), (r"[Dd]ouble|float64",)),
    _b("input of another dtype", lambda p: p.replace(input=p.input.double()),
       ("input", "weight"), (r"[Dd]ouble|float64",)),
    _b("bool input and weight",
       lambda p: p.replace(input=p.input > 0, weight=p.weight > 0, bias=None), "input",
       (r"[Bb]ool", r"floating")),
    _b("weight on another device", lambda p: p.replace(weight=p.weight.to("meta")),
       "weight", (r"meta",), kinds=DEVICE_CHECKED),
    _b("bias on another device", lambda p: p.replace(bias=p.bias.to("meta")), "bias",
       (r"meta",), kinds=tuple(k for k in DEVICE_CHECKED if k not in BACKWARD)),
    _b("input on another device", lambda p: p.replace(input=p.input.to("meta")),
       ("input", "weight"), (r"meta",), kinds=DEVICE_CHECKED),
    _b("grad_output of the wrong shape",
       lambda p: p.replace(grad_output=p.grad_output[..., :-1]), "grad_output",
       lambda p: (shape_pattern(p.grad_output),), kinds=BACKWARD),
    _b("grad_output of another dtype", lambda p: p.replace(grad_output=p.grad_output.double()),
       "grad_output", (r"[Dd]ouble|float64",), kinds=BACKWARD),
    _b("grad_output on another device",
       lambda p: p.replace(grad_output=p.grad_output.to("meta")), "grad_output", (r"meta",),
       kinds=BACKWARD),
    _b("grad_output is a list", lambda p: p.replace(grad_output=p.grad_output.tolist()),
       "grad_output", (r"Tensor", r"list"), kinds=BACKWARD),
]


def _weight_channels_mismatch(p: Problem) -> Problem:
    # conv: weight (C_out, C_in / groups + 1, *K); transposed: weight (C_in - 2, ...).
    w = p.weight
    if p.transposed:
        return p.replace(weight=w[:-2])
    return p.replace(weight=torch.cat([w, w[:, :1]], dim=1))


def _input_channels_not_divisible(p: Problem) -> Problem:
    return p.replace(input=p.input[:, :3])


CHANNELS_AND_GROUPS = [
    _b("weight channels do not match the input", _weight_channels_mismatch,
       ("weight", "input", "channels"), lambda p: (shape_pattern(p.weight),)),
    _b("input channels not divisible by groups", _input_channels_not_divisible,
       ("groups", "input", "channels", "in_channels"),
       lambda p: (shape_pattern(p.input), r"\b3\b")),
    _b("output channels not divisible by groups",
       lambda p: p.replace(weight=p.weight[:5], bias=None), ("groups", "weight"),
       lambda p: (shape_pattern(p.weight), r"\b5\b"), families=("conv",)),
    _b("groups zero", lambda p: p.replace(groups=0), "groups", POSITIVE + (r"groups=0",)),
    _b("groups negative", lambda p: p.replace(groups=-2), "groups", POSITIVE + (r"-2",)),
    _b("groups not dividing the channels", lambda p: p.replace(groups=3), "groups",
       (r"divi", r"\b3\b")),
    _b("groups is a float", lambda p: p.replace(groups=2.0), "groups",
       (r"\bint\b", r"float"), kinds=OPS + BACKWARD + ("functional", "functional_fft")),
    _b("groups is None", lambda p: p.replace(groups=None), "groups",
       (r"\bint\b", r"None"), kinds=OPS + BACKWARD + ("functional", "functional_fft")),
]

HYPER_PARAMETERS = [
    _b("stride zero", lambda p: p.replace(stride=0), "stride",
       POSITIVE + (r"stride=[\[(]?0\b",)),
    _b("stride negative", lambda p: p.replace(stride=_per_dim(p, 1, -1)), "stride",
       POSITIVE + (r"-1",)),
    _b("stride with too many values", lambda p: p.replace(stride=(1,) * (p.dims + 1)),
       "stride", LENGTH),
    _b("stride empty", lambda p: p.replace(stride=()), "stride", LENGTH + (r"\(\)|\[\]",)),
    _b("stride is a float", lambda p: p.replace(stride=1.5), "stride", TYPE_WORDS),
    _b("stride is None", lambda p: p.replace(stride=None), "stride", TYPE_WORDS),
    _b("padding negative", lambda p: p.replace(padding=_per_dim(p, 1, -1)), "padding",
       NON_NEGATIVE + (r"-1",)),
    _b("padding with too many values", lambda p: p.replace(padding=(1,) * (p.dims + 1)),
       "padding", LENGTH),
    _b("padding is a float", lambda p: p.replace(padding=1.5), "padding", TYPE_WORDS),
    _b("padding is an unknown string", lambda p: p.replace(padding="full"), "padding",
       (r"full", r"same", r"valid"), families=("conv",), kinds=PYTHON_API),
    _b("padding 'same' with stride 2", lambda p: p.replace(padding="same", stride=2),
       ("padding", "same"), (r"stride",), families=("conv",), kinds=PYTHON_API),
    _b("padding string for a transposed convolution", lambda p: p.replace(padding="same"),
       "padding", (r"same", r"int"), families=("transposed",), kinds=PYTHON_API),
    _b("dilation zero", lambda p: p.replace(dilation=0), "dilation", POSITIVE),
    _b("dilation negative", lambda p: p.replace(dilation=_per_dim(p, 1, -1)), "dilation",
       POSITIVE + (r"-1",)),
    _b("dilation with too many values", lambda p: p.replace(dilation=(1,) * (p.dims + 1)),
       "dilation", LENGTH),
    _b("output_padding not smaller than stride or dilation",
       lambda p: p.replace(output_padding=1), ("output_padding", "output padding"),
       (r"smaller", r"less"), families=("transposed",)),
    _b("output_padding negative",
       lambda p: p.replace(stride=2, output_padding=_per_dim(p, 0, -1)),
       ("output_padding", "output padding"), NON_NEGATIVE + (r"-1",), families=("transposed",)),
    _b("output_padding with too many values",
       lambda p: p.replace(stride=2, output_padding=(1,) * (p.dims + 1)),
       ("output_padding", "output padding"), LENGTH, families=("transposed",)),
    _b("kernel larger than the padded input", lambda p: p.replace(padding=0, dilation=4),
       ("kernel", "Kernel"), (r"larger", r"greater"), families=("conv",)),
    _b("empty kernel", lambda p: p.replace(weight=p.weight[..., :0]), ("kernel", "weight"),
       lambda p: (shape_pattern(p.weight), r"non-empty", r"greater than (zero|0)")),
    # padding=5 makes the output size negative; torch.nn accepts size 0 (padding=4).
    _b("transposed output size negative", lambda p: p.replace(padding=5), ("output", "padding"),
       (r"empty", r"negative", r"non-positive", r"too small"), families=("transposed",)),
    # Values whose products overflow int64: the checks must not wrap around.
    _b("padding that overflows", lambda p: p.replace(padding=HUGE), "padding",
       (str(HUGE), r"overflow", r"too large", r"at most")),
    _b("dilation that overflows the kernel extent", lambda p: p.replace(dilation=HUGE),
       "dilation", (str(HUGE), r"overflow", r"too large", r"at most")),
    _b("stride that overflows the output size", lambda p: p.replace(stride=HUGE), "stride",
       (str(HUGE), r"overflow", r"too large", r"at most"), families=("transposed",)),
]

BAD_INPUTS: list[BadInput] = TENSOR_INPUTS + CHANNELS_AND_GROUPS + HYPER_PARAMETERS


@dataclass(frozen=True)
class BadCall:
    """A bad call that is not a Problem passed to an entry point: layer
    constructors, layer-specific forward arguments, converters."""

    name: str
    call: Callable[[], object]
    arguments: Sequence[str]
    details: Sequence[str]
    entry: str = ""


LAYER_CLASSES = [getattr(tnn, f"{kind}{d}d") for kind in ("Conv", "ConvTranspose") for d in (1, 2, 3)]
LAZY_CLASSES = [getattr(tnn, f"Lazy{kind}{d}d") for kind in ("Conv", "ConvTranspose")
                for d in (1, 2, 3)]


def _layer_calls(cls) -> list[BadCall]:
    dims = int(cls.__name__[-2])
    transposed = "Transpose" in cls.__name__
    x = torch.randn(1, 4, *[5] * dims)
    calls = [
        ("groups zero", lambda: cls(4, 6, 3, groups=0), "groups", POSITIVE),
        ("groups negative", lambda: cls(4, 6, 3, groups=-1), "groups", POSITIVE),
        ("in_channels not divisible by groups", lambda: cls(3, 6, 3, groups=2),
         ("in_channels", "groups"), (r"divisible",)),
        ("out_channels not divisible by groups", lambda: cls(4, 5, 3, groups=2),
         ("out_channels", "groups"), (r"divisible",)),
        ("unknown padding_mode", lambda: cls(4, 6, 3, padding_mode="mirror"),
         ("padding_mode", "padding mode"), (r"mirror", r"zeros")),
        ("negative in_channels", lambda: cls(-1, 6, 3), ("in_channels",),
         (r"-1", r"non-negative", r"positive")),
        ("negative kernel_size", lambda: cls(4, 6, -1), ("kernel_size", "kernel size"),
         (r"-1", r"positive")),
        ("kernel_size is a float", lambda: cls(4, 6, 2.5), ("kernel_size", "kernel size"),
         (r"\bint\b", r"float", r"2\.5")),
        ("input channels differ from in_channels", lambda: cls(4, 6, 3)(x[:, :2]),
         ("input", "channels"), (r"\b2\b", r"\b4\b")),
        ("input of another dtype", lambda: cls(4, 6, 3)(x.double()), ("input", "weight"),
         (r"[Dd]ouble|float64",)),
        ("unbatched input of the wrong rank", lambda: cls(4, 6, 3)(x[0, 0]), "input",
         (shape_pattern(x[0, 0]), r"\d-?D")),
    ]
    if transposed:
        calls += [
            ("padding_mode other than zeros", lambda: cls(4, 6, 3, padding_mode="reflect")(x),
             ("padding_mode", "padding mode"), (r"zeros",)),
            ("output_size out of range", lambda: cls(4, 6, 3, stride=2)(x, output_size=[40] * dims),
             ("output_size", "output size"), (r"40", r"range")),
            ("output_size of the wrong length",
             lambda: cls(4, 6, 3, stride=2)(x, output_size=[9] * (dims + 1)),
             ("output_size", "output size"), (r"elements", r"\d+ values")),
        ]
    else:
        calls += [
            ("padding 'same' with stride 2", lambda: cls(4, 6, 3, padding="same", stride=2),
             ("padding", "same"), (r"stride",)),
            ("padding is an unknown string", lambda: cls(4, 6, 3, padding="full"), "padding",
             (r"full", r"same", r"valid")),
        ]
    return [BadCall(name, call, (args,) if isinstance(args, str) else tuple(args), tuple(det),
                    f"torchflip.nn.{cls.__name__}") for name, call, args, det in calls]


def _lazy_calls(cls) -> list[BadCall]:
    dims = int(cls.__name__[-2])
    x = torch.randn(1, 3, *[5] * dims)
    return [BadCall("first input channels not divisible by groups",
                    lambda: cls(4, 3, groups=2)(x), ("in_channels", "groups", "input"),
                    (r"divisible", r"\b3\b"), f"torchflip.nn.{cls.__name__}")]


CONVERSION_CALLS = [
    BadCall("convert a non-module", lambda: torchflip.convert(3), ("model",),
            (r"Module", r"\bint\b"), "torchflip.convert"),
    BadCall("convert None", lambda: torchflip.convert(None), ("model",),
            (r"Module", r"None"), "torchflip.convert"),
    BadCall("revert a non-module", lambda: torchflip.revert("conv"), ("model",),
            (r"Module", r"\bstr\b"), "torchflip.revert"),
    BadCall("convert an uninitialised lazy layer", lambda: torchflip.convert(nn.LazyConv2d(4, 3)),
            ("LazyConv2d",), (r"not initiali[sz]ed", r"forward"), "torchflip.convert"),
    BadCall("revert an uninitialised lazy layer",
            lambda: torchflip.revert(nn.Sequential(tnn.LazyConv1d(4, 3))), ("LazyConv1d",),
            (r"not initiali[sz]ed", r"forward"), "torchflip.revert"),
    BadCall("from_torch of another dimensionality",
            lambda: tnn.Conv2d.from_torch(nn.Conv1d(2, 2, 3)), ("from_torch",),
            (r"Conv2d", r"Conv1d"), "torchflip.nn.Conv2d.from_torch"),
    BadCall("from_torch of a forward convolution",
            lambda: tnn.ConvTranspose2d.from_torch(nn.Conv2d(2, 2, 3)), ("from_torch",),
            (r"ConvTranspose2d", r"Conv2d"), "torchflip.nn.ConvTranspose2d.from_torch"),
]


def other_calls() -> list[BadCall]:
    calls = [c for cls in LAYER_CLASSES for c in _layer_calls(cls)]
    calls += [c for cls in LAZY_CLASSES for c in _lazy_calls(cls)]
    return calls + CONVERSION_CALLS


# -- running and judging ---------------------------------------------------------------------


@dataclass
class Verdict:
    """What one bad call did: 'raised' (with the exception's type and message)
    or 'returned'; and whether the message is clear."""

    id: str
    outcome: str
    error_type: str = ""
    message: str = ""
    arguments: Sequence[str] = field(default_factory=tuple)
    details: Sequence[str] = field(default_factory=tuple)

    @property
    def names_argument(self) -> bool:
        # Case-insensitive: torch capitalises a leading word ("Input type ...").
        return any(re.search(r"(?<![A-Za-z_])" + re.escape(a) + r"(?![A-Za-z])", self.message,
                             re.IGNORECASE) for a in self.arguments)

    @property
    def says_expected_or_given(self) -> bool:
        return any(re.search(d, self.message) for d in self.details)

    @property
    def clear(self) -> bool:
        return self.outcome == "raised" and self.names_argument and self.says_expected_or_given

    def as_json(self) -> str:
        return json.dumps(dict(id=self.id, outcome=self.outcome, error_type=self.error_type,
                               message=self.message, clear=self.clear))


def problem_cases() -> Iterator[tuple[str, BadInput, str, str]]:
    """(group id, bad input, family, kind) for every applicable combination."""
    for bad in BAD_INPUTS:
        for family in bad.families:
            for kind in bad.kinds:
                if applies(kind, family == "transposed"):
                    yield f"{bad.name} | {family} | {kind}", bad, family, kind


def judge_problem_case(bad: BadInput, family: str, kind: str, dims: int) -> Verdict:
    p = bad.change(base_problem(family == "transposed", dims))
    _, call = entry_point(kind, family == "transposed")
    result, value = outcome(lambda: call(p))
    verdict = Verdict(f"{bad.name} | {family} | {kind} | {dims}d", result,
                      arguments=bad.arguments, details=tuple(bad.details(p)))
    if result == "raised":
        verdict.error_type, verdict.message = type(value).__name__, str(value)
    return verdict


def judge_call(bad: BadCall) -> Verdict:
    result, value = outcome(bad.call)
    verdict = Verdict(f"{bad.name} | {bad.entry}", result, arguments=bad.arguments,
                      details=bad.details)
    if result == "raised":
        verdict.error_type, verdict.message = type(value).__name__, str(value)
    return verdict


def all_ids() -> list[str]:
    ids = [f"{gid} | {d}d" for gid, *_ in problem_cases() for d in (1, 2, 3)]
    return ids + [f"{c.name} | {c.entry}" for c in other_calls()]


def _run_all(out) -> None:
    for gid, bad, family, kind in problem_cases():
        for dims in (1, 2, 3):
            print(json.dumps(dict(start=f"{gid} | {dims}d")), file=out, flush=True)
            print(judge_problem_case(bad, family, kind, dims).as_json(), file=out, flush=True)
    for bad in other_calls():
        print(json.dumps(dict(start=f"{bad.name} | {bad.entry}")), file=out, flush=True)
        print(judge_call(bad).as_json(), file=out, flush=True)


def summarise(records: list[dict], expected_ids: list[str]) -> dict:
    """Counts of clear rejections, unclear messages, normal returns and calls
    that crashed or never reported (the process died)."""
    done = {r["id"]: r for r in records if r.get("outcome") in ("raised", "returned")}
    return dict(
        calls=len(expected_ids),
        clear=sum(1 for r in done.values() if r["clear"]),
        unclear=sum(1 for r in done.values() if r["outcome"] == "raised" and not r["clear"]),
        returned=sum(1 for r in done.values() if r["outcome"] == "returned"),
        crashed_or_missing=sum(1 for i in expected_ids if i not in done),
        distinct_bad_inputs=len({b.name for b in BAD_INPUTS} | {c.name for c in other_calls()}),
    )


def main(argv: list[str] | None = None) -> int:
    import io
    import warnings

    warnings.simplefilter("ignore")  # zero-element init warnings would clutter the stream
    argv = sys.argv[1:] if argv is None else argv
    if "--jsonl" in argv:
        _run_all(sys.stdout)
        return 0
    buffer = io.StringIO()
    _run_all(buffer)
    records = [json.loads(line) for line in buffer.getvalue().splitlines()]
    for r in records:
        if "outcome" in r and not r["clear"]:
            print(f"NOT CLEAR [{r['outcome']}] {r['id']}: {r['error_type']}: "
                  f"{r['message'].splitlines()[0] if r['message'] else ''}")
    print(json.dumps(summarise(records, all_ids())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
