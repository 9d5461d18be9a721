"""Memory: many forward and backward passes do not grow resident memory, and
dropped layers and tensors are freed by reference counting alone (no
reference cycles through the C++ or Python autograd nodes, the flipped-weight
cache or the engine choice)."""

from __future__ import annotations

import gc
import os
import weakref

import pytest
import torch
from torch import nn
from torch.autograd import forward_ad

import torchflip.nn as tnn
import torchflip.nn.functional as TF

ITERATIONS = 10_000
GROWTH_LIMIT_MB = 20.0


def resident_mb() -> float:
    """Resident set size of this process (second field of /proc/self/statm, in pages)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.fixture
def one_thread():
    """One intra-op thread: on a small shared machine, idle OpenMP workers
    spinning for tiny tensors would make the loop ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _one_iteration(i: int, layers: dict, x1, x2, w1, w2, b) -> None:
    """One of several small workloads, in rotation: operator forward and
    backward (1-D conv, 2-D transposed conv), a double backward, the FFT
    engine, and layers with and without gradients."""
    which = i % 6
    if which == 0:
        TF.conv1d(x1, w1, b, padding=1).sum().backward()
    elif which == 1:
        TF.conv_transpose2d(x2, w2, stride=2).square().sum().backward()
    elif which == 2:
        out = TF.conv1d(x1, w1, b, stride=2, dilation=2)
        (g,) = torch.autograd.grad(out.square().sum(), w1, create_graph=True)
        g.sum().backward()
    elif which == 3:
        TF.conv1d(x1, w1, b, padding=2, method="fft").sum().backward()
    elif which == 4:
        layers["conv"](x2).sum().backward()
    else:
        with torch.no_grad():
            layers["conv"](x2)
            layers["transposed"](x2)


def test_resident_memory_does_not_grow_over_10000_iterations(one_thread):
    torch.manual_seed(0)
    x1 = torch.randn(2, 4, 16, requires_grad=True)
    w1 = torch.randn(6, 4, 3, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    x2 = torch.randn(1, 4, 6, 6, requires_grad=True)
    w2 = torch.randn(4, 3, 3, 3, requires_grad=True)
    layers = dict(conv=tnn.Conv2d(4, 4, 3, padding=1), transposed=tnn.ConvTranspose2d(4, 2, 3))
    warm_up = 600
    for i in range(warm_up):
        _one_iteration(i, layers, x1, x2, w1, w2, b)
    gc.collect()
    before = resident_mb()
    for i in range(ITERATIONS):
        _one_iteration(i, layers, x1, x2, w1, w2, b)
        if i % 100 == 0:
            for t in (x1, w1, b, x2, w2):
                t.grad = None
    gc.collect()
    growth = resident_mb() - before
    print(f"\nresident memory: {before:.1f} MB after warm-up, growth over {ITERATIONS} "
          f"iterations {growth:+.2f} MB")
    assert growth < GROWTH_LIMIT_MB


def _layer_cases():
    return [
        ("Conv2d", lambda: tnn.Conv2d(2, 4, 3, padding=1)),
        ("Conv1d fft", lambda: tnn.Conv1d(2, 2, 5, padding=2, method="fft")),
        ("Conv1d auto, long kernel", lambda: tnn.Conv1d(1, 1, 33)),
        ("ConvTranspose3d", lambda: tnn.ConvTranspose3d(2, 2, 2, stride=2)),
        ("LazyConv2d", lambda: tnn.LazyConv2d(4, 3)),
        ("torch.nn.Conv2d (control)", lambda: nn.Conv2d(2, 4, 3, padding=1)),
    ]


def _input_for(layer: nn.Module) -> torch.Tensor:
    if isinstance(layer, nn.modules.lazy.LazyModuleMixin):
        return torch.randn(1, 2, 6, 6, requires_grad=True)
    dims = layer.weight.dim() - 2
    size = 40 if layer.kernel_size[0] > 16 else 6
    return torch.randn(1, layer.in_channels, *[size] * dims, requires_grad=True)


@pytest.mark.parametrize("make", [c[1] for c in _layer_cases()], ids=[c[0] for c in _layer_cases()])
def test_dropped_layer_is_freed_without_the_garbage_collector(make):
    """Forward, backward, double backward (create_graph=True), a no_grad call
    through the flipped-weight cache, then `del`: with the garbage collector
    off, the layer and its weight must be gone."""
    gc.collect()
    gc.disable()
    try:
        layer = make()
        x = _input_for(layer)
        layer(x)  # materialises lazy parameters
        layer_ref, weight_ref = weakref.ref(layer), weakref.ref(layer.weight)
        out = layer(x)
        gx, gw = torch.autograd.grad(out.square().sum(), (x, layer.weight), create_graph=True)
        (gx.square().sum() + gw.square().sum()).backward()
        with torch.no_grad():
            layer(x)
        del layer, out, gx, gw, x
        assert layer_ref() is None, "the layer is kept alive by a reference cycle"
        assert weight_ref() is None, "the weight is kept alive by a reference cycle"
    finally:
        gc.enable()


def _differentiate(transform: str, conv, x: torch.Tensor, w: torch.Tensor) -> None:
    """Second-order use of ``conv`` through one kind of autograd."""
    if transform == "autograd":
        out = conv(x, w)
        (g,) = torch.autograd.grad(out.square().sum(), w, create_graph=True)
        g.sum().backward()
    elif transform == "forward_ad":
        with forward_ad.dual_level():
            dual = forward_ad.make_dual(w, torch.randn_like(w))
            forward_ad.unpack_dual(conv(x, dual)).tangent.sum().backward()
    else:
        per_sample = torch.func.vmap(torch.func.grad(
            lambda xi, wi: conv(xi[None], wi).square().sum(), argnums=1), in_dims=(0, None))
        per_sample(x, w).sum().backward()


@pytest.mark.parametrize("transform", ["autograd", "forward_ad", "vmap_grad"])
@pytest.mark.parametrize("transposed", [False, True])
def test_operands_are_freed_without_the_garbage_collector(transform, transposed):
    """Tensors that went through the C++ autograd functions (autograd), or the
    Python ones used under torch.func and forward-mode AD, are freed with
    their graphs by reference counting."""
    conv = TF.conv_transpose1d if transposed else TF.conv1d

    def operands():
        x = torch.randn(2, 2, 7, requires_grad=True)
        return x, torch.randn(2, 3 if transposed else 2, 3, requires_grad=True)

    # The first torch.func call of a process keeps its operands alive (a
    # one-time cache inside torch.func; torch.nn.functional.conv1d shows it too).
    _differentiate(transform, conv, *operands())
    gc.collect()
    gc.disable()
    try:
        x, w = operands()
        refs = [weakref.ref(x), weakref.ref(w)]
        _differentiate(transform, conv, x, w)
        del x, w
        assert all(ref() is None for ref in refs), "operands kept alive by a reference cycle"
    finally:
        gc.enable()
