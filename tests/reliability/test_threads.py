"""Thread safety: four threads calling torchflip at the same time, each on its
own data, get the results computed beforehand by the reference; a layer
shared by the threads (its flipped-weight cache is per layer) gives each
thread the output of the weight loaded at the time, also when the weight is
swapped by load_state_dict between rounds; gradients accumulated by several
threads into one shared layer add up."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import torch

import torchflip.nn as tnn
import torchflip.nn.functional as TF
from tests.reference import torch_conv, torch_conv_transpose

THREADS = 4


def run_in_threads(work: Callable[[int], None], threads: int = THREADS) -> list[BaseException]:
    """Runs work(i) in `threads` threads started together; returns the
    exceptions (including assertion failures) they raised."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as error:  # noqa: BLE001  (reported to the main thread)
            errors.append(error)

    workers = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers), "a thread hung"
    return errors


def _problem(i: int):
    """Thread i's problem: a different operator and shape per thread."""
    generator = torch.Generator().manual_seed(100 + i)

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    return [
        (TF.conv1d, torch_conv, randn(2, 4, 23), randn(6, 2, 5), randn(6),
         dict(stride=2, padding=2, groups=2)),
        (TF.conv2d, torch_conv, randn(1, 3, 9, 8), randn(4, 3, 3, 2), randn(4),
         dict(padding=1, dilation=2)),
        (TF.conv_transpose2d, torch_conv_transpose, randn(2, 4, 5, 5), randn(4, 3, 3, 3),
         None, dict(stride=2, output_padding=1)),
        (TF.conv_transpose3d, torch_conv_transpose, randn(1, 2, 3, 4, 3), randn(2, 2, 2, 2, 2),
         randn(2), dict(padding=1)),
    ][i]


def _forward_and_grads(fn, x, w, b, kwargs):
    leaves = [t.clone().requires_grad_() for t in (x, w, b) if t is not None]
    out = fn(*leaves[:2], leaves[2] if b is not None else None, **kwargs)
    grads = torch.autograd.grad(out.square().sum(), leaves)
    return out.detach(), grads


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_concurrent_calls_on_different_data(method):
    """Each thread runs forward and backward of its own operator 15 times; with
    method='fft', thread 0 uses the FFT engine (stride 1) meanwhile."""
    problems = [_problem(i) for i in range(THREADS)]
    if method == "fft":
        fn, ref, x, w, b, _ = problems[0]
        problems[0] = (fn, ref, x, w, b, dict(padding=2, groups=2))
    expected = [_forward_and_grads(ref, x, w, b, kw) for _, ref, x, w, b, kw in problems]
    if method == "fft":
        problems[0] = problems[0][:5] + (dict(problems[0][5], method="fft"),)

    def work(i: int) -> None:
        fn, _, x, w, b, kwargs = problems[i]
        for _ in range(15):
            out, grads = _forward_and_grads(fn, x, w, b, kwargs)
            torch.testing.assert_close(out, expected[i][0])
            for g, e in zip(grads, expected[i][1]):
                torch.testing.assert_close(g, e)

    errors = run_in_threads(work)
    assert not errors, errors[0]


@pytest.mark.parametrize("layer_cls", [tnn.Conv2d, tnn.ConvTranspose2d])
def test_shared_layer_under_no_grad_with_weight_swaps(layer_cls):
    """One layer, four threads with their own inputs, under no_grad (the
    cached flipped weight): between rounds the main thread swaps the weights
    between two state_dicts; every call must see the weights of its round."""
    torch.manual_seed(0)
    layer = layer_cls(4, 6, 3, padding=1, groups=2)
    states = [{k: torch.randn_like(v) for k, v in layer.state_dict().items()} for _ in range(2)]
    inputs = [torch.randn(1 + i % 2, 4, 7 + i, 6) for i in range(THREADS)]
    reference = torch_conv_transpose if layer_cls is tnn.ConvTranspose2d else torch_conv

    def expected(state, x):
        return reference(x, state["weight"], state["bias"], padding=1, groups=2)

    wanted = [[expected(state, x) for x in inputs] for state in states]
    for round_ in range(12):
        current = round_ % 2
        layer.load_state_dict(states[current])

        def work(i: int, current: int = current) -> None:
            with torch.no_grad():
                for _ in range(5):
                    torch.testing.assert_close(layer(inputs[i]), wanted[current][i])

        errors = run_in_threads(work)
        assert not errors, f"round {round_}: {errors[0]}"


@pytest.mark.parametrize("layer_cls", [tnn.Conv1d, tnn.ConvTranspose1d])
def test_gradients_from_several_threads_accumulate_in_a_shared_layer(layer_cls):
    torch.manual_seed(0)
    layer = layer_cls(2, 4, 3).double()
    inputs = [torch.randn(2, 2, 9, dtype=torch.float64) for _ in range(THREADS)]
    reference = layer.to_torch()
    for x in inputs:
        reference(x).square().sum().backward()

    def work(i: int) -> None:
        layer(inputs[i]).square().sum().backward()

    errors = run_in_threads(work)
    assert not errors, errors[0]
    # to_torch flips the weight, so its gradient is the flipped one.
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad.flip(-1))
    torch.testing.assert_close(layer.bias.grad, reference.bias.grad)
