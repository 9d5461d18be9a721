"""Whole-model conversion between torch.nn convolutions and torchflip's."""

from __future__ import annotations

import copy

from torch import nn

import torchflip.nn as tfnn

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


def _replace(model: nn.Module, convert_one, types, inplace: bool) -> nn.Module:
    if not inplace:
        model = copy.deepcopy(model)
    if type(model) in types:
        return convert_one(model)
    for name, child in list(model.named_children()):
        setattr(model, name, _replace(child, convert_one, types, inplace=True))
    return model


def convert(model: nn.Module, flip_weights: bool = True, inplace: bool = False) -> nn.Module:
    """Replaces every torch.nn Conv1d/2d/3d and ConvTranspose1d/2d/3d in
    ``model`` by its torchflip counterpart.

    With ``flip_weights=True`` (default) each weight is flipped along its
    spatial dimensions, so the model computes exactly the same function. With
    ``flip_weights=False`` the weights are kept as they are, so a model whose
    weights were trained with true convolution (Theano/Lasagne, Flux.jl,
    MATLAB) computes what it computed there. Returns a converted copy unless
    ``inplace``.

    >>> import torch, torchflip
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
    >>> flipped = torchflip.convert(model)
    >>> type(flipped[0]).__name__, type(flipped[0]).__module__
    ('Conv2d', 'torchflip.nn.conv')
    >>> x = torch.randn(1, 1, 9, 9)
    >>> torch.allclose(flipped(x), model(x), atol=1e-6)
    True
    """
    return _replace(model, lambda m: _TO_TRUE[type(m)].from_torch(m, flip_weights), _TO_TRUE,
                    inplace)


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
