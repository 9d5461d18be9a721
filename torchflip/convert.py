"""Whole-model conversion between torch.nn convolutions and torchflip's."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.modules.conv import _ConvTransposeNd

import torchflip.nn as tfnn
from torchflip.nn._method import check_method

# Exact types only: a subclass of torch.nn.Conv2d may override forward, and
# converting it would silently change what it computes.
_TO_TRUE = {
    nn.Conv1d: tfnn.Conv1d,
    nn.Conv2d: tfnn.Conv2d,
    nn.Conv3d: tfnn.Conv3d,
    nn.ConvTranspose1d: tfnn.ConvTranspose1d,
    nn.ConvTranspose2d: tfnn.ConvTranspose2d,
    nn.ConvTranspose3d: tfnn.ConvTranspose3d,
}
_TO_TORCH = {true: torch_cls for torch_cls, true in _TO_TRUE.items()}


def _check_no_uninitialized_lazy(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.lazy.LazyModuleMixin) and \
                isinstance(module, nn.modules.conv._ConvNd) and \
                module.has_uninitialized_params():
            raise ValueError(
                f"cannot convert {name or 'the model'} ({type(module).__name__}): its "
                "parameters are not initialised yet; run one forward pass first, or build the "
                "model with torchflip.nn's Lazy layers")


def _replace(model: nn.Module, convert_one, types, inplace: bool) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected 'model' to be a torch.nn.Module, but got "
                        f"{type(model).__name__}")
    _check_no_uninitialized_lazy(model)
    if not inplace:
        model = copy.deepcopy(model)
    # One converted module per original, so modules shared between several
    # places (tied weights) stay shared after conversion.
    converted: dict[int, nn.Module] = {}

    def visit(module: nn.Module) -> nn.Module:
        if id(module) in converted:
            return converted[id(module)]
        result = convert_one(module) if type(module) in types else module
        converted[id(module)] = result
        if result is module:
            # _modules holds every slot, including repeated modules that
            # named_children() would report only once.
            for name, child in list(module._modules.items()):
                if child is not None:
                    module._modules[name] = visit(child)
        return result

    return visit(model)


def convert(model: nn.Module, flip_weights: bool = True, inplace: bool = False, *,
            method: str = "auto") -> nn.Module:
    """Replaces every torch.nn Conv1d/2d/3d and ConvTranspose1d/2d/3d in
    ``model`` by its torchflip counterpart.

    With ``flip_weights=True`` (default) each weight is flipped along its
    spatial dimensions, so the model computes exactly the same function. With
    ``flip_weights=False`` the weights are kept as they are, so a model whose
    weights were trained with true convolution (Theano/Lasagne, Flux.jl,
    MATLAB) computes what it computed there. Returns a converted copy unless
    ``inplace``. ``method`` is the engine of the converted Conv1d/2d/3d
    layers (see :class:`torchflip.nn.Conv2d`): ``'direct'`` runs the same ATen
    kernels as torch.nn on the flipped weight, for results equal to the
    original model's bit for bit; ``'auto'`` may pick the FFT for some
    layers, equal to rounding.

    >>> import torch, torchflip
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
    >>> flipped = torchflip.convert(model)
    >>> type(flipped[0]).__name__, type(flipped[0]).__module__
    ('Conv2d', 'torchflip.nn.conv')
    >>> x = torch.randn(1, 1, 9, 9)
    >>> torch.allclose(flipped(x), model(x), atol=1e-6)
    True
    """
    check_method(method, "torchflip.convert")

    def convert_one(module: nn.Module) -> nn.Module:
        true_cls = _TO_TRUE[type(module)]
        if issubclass(true_cls, _ConvTransposeNd):  # one engine: no method argument
            return true_cls.from_torch(module, flip_weights)
        return true_cls.from_torch(module, flip_weights, method=method)

    return _replace(model, convert_one, _TO_TRUE, inplace)


def revert(model: nn.Module, flip_weights: bool = True, inplace: bool = False) -> nn.Module:
    """The inverse of :func:`convert`: every torchflip layer becomes the torch.nn
    layer computing the same function (``flip_weights=True``) or holding the
    same weights (``flip_weights=False``).

    >>> import torch, torchflip
    >>> model = torch.nn.Sequential(torch.nn.Conv1d(2, 2, 3))
    >>> back = torchflip.revert(torchflip.convert(model))
    >>> torch.equal(back[0].weight, model[0].weight)
    True
    """
    return _replace(model, lambda m: m.to_torch(flip_weights), _TO_TORCH, inplace)
