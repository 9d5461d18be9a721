"""True-convolution layers: drop-in replacements for torch.nn.Conv1d/2d/3d.

Each layer has torch.nn's constructor, attributes, parameter shapes,
state_dict keys and default initialisation, but computes true convolution
(the kernel flipped along every spatial dimension). One keyword-only argument
is added: ``method='auto' | 'direct' | 'fft'`` picks the engine. 'direct' is
the compiled operator; 'fft' the FFT engine (stride 1), fast for large
kernels; 'auto' (default) times both engines once per layer and input size
and uses the faster for each pass, so a training step may run the forward
pass directly and the backward pass through the FFT. They deliberately do not
subclass torch.nn.Conv1d/2d/3d, so that tools which rewrite those modules
(conv-batchnorm fusion patterns, quantization) never treat them as
cross-correlation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple, Optional, Union

import torch
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.utils import _ntuple

from torchflip import _ops
from torchflip._ops import validate_once
from torchflip.nn import functional as TF
from torch.nn.modules.lazy import LazyModuleMixin

from torchflip.nn._arguments import check_layer_sizes
from torchflip.nn._conversion import copy_convolution
from torchflip.nn._fft_conv import ForwardPlan, forward_plan, fft_runs
from torchflip.nn._method import (DIRECT, Engines, check_method, choose_engines, fft_candidate,
                                  measurement_generation)
from torchflip.nn._flip_cache import (FlipCacheMixin, FlippedWeightCache, flip_cache_enabled,
                                      plain_eager)

__all__ = ["Conv1d", "Conv2d", "Conv3d"]

# Routes by torch's convolution (see _TrueConvNd._route): with the layer's
# cached flip (no gradient for the weight), with the weight as it is (a
# kernel of size 1), or with weight.flip() under torch's autograd, as the
# naive flip does. The last serves weights of at most 1/SMALL_WEIGHT_RATIO of
# the input's elements, where holding the reversed copy until the backward
# pass is negligible beside the activations, and torch's autograd node costs
# less than the operator's C++ one: at one thread, against the operator, a
# 64-tap filter over 16k samples took 0.87 of its time (forward) and 0.95
# (forward and backward), a depthwise 7x7 layer at 64x64 0.99, ResNet-50's
# stem-sized layers the same within noise.
CACHED_FLIP, AS_IS, FLIP = "cached flip", "as is", "flip"
SMALL_WEIGHT_RATIO = 64
Route = Union[str, Engines]


class _RememberedCall(NamedTuple):
    """A layer's last call (see _TrueConvNd._signature): its signature, the
    route it took, the FFT engine's forward plan for it (or None), and
    whether the layer keeps its weight's spectra."""

    signature: tuple
    route: Route
    plan: Optional[ForwardPlan]
    keeps_spectra: bool


class _TrueConvNd(FlipCacheMixin, _ConvNd):
    _dims: int
    _torch_cls: type[nn.Module]
    _torch_conv: Callable[..., Tensor]  # torch's functional cross-correlation
    _true_conv: Callable[..., Tensor]  # torchflip's functional true convolution

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None, *, method: str = "auto") -> None:
        to_tuple = _ntuple(self._dims, "_")
        check_method(method, type(self).__name__)
        if in_channels != 0 or not isinstance(self, LazyModuleMixin):
            check_layer_sizes(type(self).__name__, in_channels, out_channels, kernel_size)
        super().__init__(
            in_channels, out_channels, to_tuple(kernel_size), to_tuple(stride),
            padding if isinstance(padding, str) else to_tuple(padding), to_tuple(dilation),
            False, to_tuple(0), groups, bias, padding_mode, device=device, dtype=dtype)
        self.method = method
        self._flip_cache = FlippedWeightCache()

    def _signature(self, input: Tensor, weight: Tensor,
                   bias: Optional[Tensor]) -> Optional[tuple]:
        """What decides how a call is computed, in plain eager mode (else
        None): the shapes, dtypes, devices and layouts of the operands, the
        layer's arguments, which operands need gradients (the bias's is a
        sum, as in _method), whether the flip cache is on, the method, and
        whether 'auto' may time engines (its measurements' generation, and
        deterministic mode).

        The layer remembers its last call's signature with the route it took
        (see _route), and only after the call has succeeded, so a repeated
        signature also stands for arguments the operator has accepted: the
        call skips validate_once, the engine choice and the path's checks.
        Python between convolutions that evict the CPU's caches runs several
        times slower than alone: at one thread fir64@16k's training forward
        pass (0.4 ms) spent about 35 us in the layer's Python against torch's
        layer, of which the remembered route saves about half."""
        if not _ops.plain_eager_mode():
            return None
        return (input.shape, input.dtype, input.device, input.layout,
                weight.shape, weight.dtype, weight.device, weight.layout,
                None if bias is None else (bias.shape, bias.dtype, bias.device, bias.layout),
                torch.is_grad_enabled(), input.requires_grad, weight.requires_grad,
                flip_cache_enabled(), self.stride, self.padding, self.dilation, self.groups,
                self.padding_mode, getattr(self, "method", "auto"), measurement_generation(),
                torch.are_deterministic_algorithms_enabled())

    def _engines(self, input: Tensor, weight: Tensor) -> Engines:
        """The engines of this call's two passes: ``method``'s, with 'auto'
        resolved by torchflip.nn._method."""
        method = getattr(self, "method", "auto")  # modules pickled before `method` existed
        if method != "auto":
            return Engines(method, method)
        if not fft_candidate(self.kernel_size, self.stride, self.in_channels // self.groups):
            return DIRECT  # skips the engine choice on every call of such layers
        if self.padding_mode != "zeros" or self.padding == "valid":
            padding = (0,) * self._dims
        elif self.padding == "same":
            padding = tuple(d * (k - 1) // 2 for d, k in zip(self.dilation, self.kernel_size))
        else:
            padding = self.padding
        return choose_engines(input, weight, self.stride, padding, self.dilation, self.groups,
                              keeps_spectra=FlippedWeightCache.applies(weight))

    def _route(self, input: Tensor, weight: Tensor) -> Route:
        """How this call is computed: by the FFT engine (Engines using it), by
        the operator (DIRECT), or by torch's convolution with a reversed
        weight (CACHED_FLIP, AS_IS, FLIP), which computes exactly the same
        where no other autograd path is needed (plain eager mode)."""
        engines = self._engines(input, weight)
        if engines != DIRECT:
            return engines
        if FlippedWeightCache.applies(weight):
            return CACHED_FLIP  # no gradient reaches the weight
        if not plain_eager(weight):
            return DIRECT
        if weight.shape[2:].numel() == 1:
            # A kernel of size 1 is its own reversal: torch's convolution
            # with its own autograd, without the operator's per-call overhead
            # (measurable on bandwidth-bound 1x1 layers).
            return AS_IS
        if weight.numel() * SMALL_WEIGHT_RATIO <= input.numel():
            return FLIP
        return DIRECT

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        if not isinstance(input, Tensor):
            raise TypeError(f"{type(self).__name__}: expected 'input' to be a Tensor, but got "
                            f"{type(input).__name__}")
        padding = self.padding
        if self.padding_mode != "zeros":
            # As torch.nn: pad explicitly (also for 'same'), then convolve unpadded.
            input = nn.functional.pad(input, self._reversed_padding_repeated_twice,
                                      mode=self.padding_mode)
            padding = (0,) * self._dims
        signature = self._signature(input, weight, bias)
        last = self.__dict__.get("_last_call")
        if signature is not None and last is not None and last.signature == signature:
            return self._run(last.route, input, weight, bias, padding, remembered=last)
        route = self._route(input, weight)
        out = self._run(route, input, weight, bias, padding)
        if signature is not None:
            self._last_call = self._remembered(signature, route, input, weight, padding)
        return out

    def _normalised(self, input: Tensor, padding) -> bool:
        """Whether the engines can take this call's arguments as they are: a
        batched input, and one int per dimension for padding, stride and
        dilation (the constructor normalised them, unless padding is a
        string)."""
        return (input.dim() == self._dims + 2 and type(padding) is tuple
                and type(self.stride) is tuple and type(self.dilation) is tuple)

    def _remembered(self, signature: tuple, route: Route, input: Tensor, weight: Tensor,
                    padding) -> "_RememberedCall":
        """What a call of the same signature reuses: the route that this call
        ran (the operator where the FFT engine serves no such call: an empty
        input, a dtype it does not compute), so that it skips the checks
        that chose it; for the FFT engine, its forward plan, and whether the
        weight's spectra are kept."""
        plan, keeps_spectra = None, False
        if type(route) is not str and route.uses_fft:
            if not fft_runs(input):
                route = DIRECT
            else:
                keeps_spectra = FlippedWeightCache.applies(weight)
                if route.forward == "fft" and self._normalised(input, padding):
                    plan = forward_plan(input, weight, padding, self.dilation, self.groups)
        return _RememberedCall(signature, route, plan, keeps_spectra)

    def _run(self, route: Route, input: Tensor, weight: Tensor, bias: Optional[Tensor],
             padding, remembered: Optional["_RememberedCall"] = None) -> Tensor:
        """The convolution by ``route``; ``remembered``: what an earlier
        call of this signature, which took this route, left (see
        _signature)."""
        accepted = remembered is not None
        if type(route) is str:
            if not accepted:
                validate_once(self._true_conv, input, weight, bias, self.stride, padding,
                              self.dilation, self.groups)
            if route == CACHED_FLIP:
                weight = self._flip_cache.get(weight)
            elif route == FLIP:
                weight = weight.flip(list(range(2, weight.dim())))
            return self._torch_conv(input, weight, bias, self.stride, padding, self.dilation,
                                    self.groups)
        # The functional layer's normalisation would only cost time for a
        # batched input (about 10 us a call timed alone, three times that
        # between convolutions): the operator and the FFT engine's checks
        # cover the rest.
        normalised = self._normalised(input, padding)
        if route == DIRECT and normalised:
            return _ops.conv(input, weight, bias, self.stride, padding, self.dilation,
                             self.groups)
        spectra = None
        if (remembered.keeps_spectra if accepted
                else route.uses_fft and FlippedWeightCache.applies(weight)):
            # No gradient reaches the weight: its spectra are kept.
            spectra = functools.partial(self._flip_cache.spectrum, weight)
        if normalised:
            return TF.run_engines(input, weight, bias, self.stride, padding, self.dilation,
                                  self.groups, self._dims, route, spectra, validated=accepted,
                                  plan=remembered.plan if accepted else None)
        return TF._conv_nd(input, weight, bias, self.stride, padding, self.dilation, self.groups,
                           self._dims, route, spectra)

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.weight, self.bias)

    def __getstate__(self) -> dict:
        # The remembered route stands for this process's calls (and timings):
        # copies and pickles start without it.
        state = self.__dict__.copy()
        state.pop("_last_call", None)
        return state

    def __prepare_scriptable__(self):
        from torchflip.nn._scriptable import ScriptableConv

        return ScriptableConv(self)

    def extra_repr(self) -> str:
        method = getattr(self, "method", "auto")
        extra = "" if method == "auto" else f", method={method!r}"
        return super().extra_repr() + extra + ", true convolution"

    @classmethod
    def from_torch(cls, conv: nn.Module, flip_weights: bool = True, *, method: str = "auto"):
        """The true-convolution layer computing exactly what ``conv`` (a
        torch.nn layer of the same dimensionality) computes: its weight flipped
        along the spatial dimensions, the same bias, hyper-parameters, device,
        dtype, requires_grad and training mode. With ``flip_weights=False`` the
        weight is copied unflipped (for weights trained with true convolution)."""
        if not isinstance(conv, cls._torch_cls):
            raise TypeError(
                f"{cls.__name__}.from_torch expects a {cls._torch_cls.__module__}."
                f"{cls._torch_cls.__name__}, but got {type(conv).__name__}")
        return copy_convolution(conv, cls, flip_weights, method=method)

    def to_torch(self, flip_weights: bool = True):
        """The torch.nn layer (cross-correlation) computing exactly what this
        layer computes; see :meth:`from_torch`."""
        return copy_convolution(self, self._torch_cls, flip_weights)


class Conv1d(_TrueConvNd):
    r"""1-D true convolution over an input of shape :math:`(N, C_{in}, L)` or
    :math:`(C_{in}, L)`: :class:`torch.nn.Conv1d` with the kernel flipped,

    .. math:: y[n, o, i] = b[o] + \sum_{c, k} x_p[n, c, s i + d k] \, w[o, c, K - 1 - k].

    Arguments, attributes, initialisation and state_dict are those of
    :class:`torch.nn.Conv1d`; see :func:`torchflip.nn.functional.conv1d` for
    padding conventions ('same' centres as torch.nn does).

    >>> import torch, torchflip
    >>> conv = torch.nn.Conv1d(2, 3, 5)
    >>> flip = torchflip.nn.Conv1d.from_torch(conv)
    >>> x = torch.randn(4, 2, 20)
    >>> torch.allclose(flip(x), conv(x), atol=1e-6)
    True
    """

    _dims = 1
    _torch_cls = nn.Conv1d
    _torch_conv = staticmethod(nn.functional.conv1d)
    _true_conv = staticmethod(TF.conv1d)


class Conv2d(_TrueConvNd):
    r"""2-D true convolution over an input of shape :math:`(N, C_{in}, H, W)`
    or :math:`(C_{in}, H, W)`: :class:`torch.nn.Conv2d` with the kernel flipped
    along both spatial dimensions.

    Arguments, attributes, initialisation and state_dict are those of
    :class:`torch.nn.Conv2d`, including ``padding='same'`` and every
    ``padding_mode``.

    >>> import torch, torchflip
    >>> conv = torchflip.nn.Conv2d(3, 8, 3, padding="same", padding_mode="reflect")
    >>> conv(torch.randn(2, 3, 16, 16)).shape
    torch.Size([2, 8, 16, 16])
    >>> sorted(conv.state_dict()) == sorted(torch.nn.Conv2d(3, 8, 3).state_dict())
    True
    """

    _dims = 2
    _torch_cls = nn.Conv2d
    _torch_conv = staticmethod(nn.functional.conv2d)
    _true_conv = staticmethod(TF.conv2d)


class Conv3d(_TrueConvNd):
    r"""3-D true convolution over an input of shape :math:`(N, C_{in}, D, H, W)`
    or :math:`(C_{in}, D, H, W)`: :class:`torch.nn.Conv3d` with the kernel
    flipped along all three spatial dimensions.

    >>> import torch, torchflip
    >>> torchflip.nn.Conv3d(2, 4, (1, 3, 3), padding=(0, 1, 1))(torch.randn(1, 2, 4, 8, 8)).shape
    torch.Size([1, 4, 4, 8, 8])
    """

    _dims = 3
    _torch_cls = nn.Conv3d
    _torch_conv = staticmethod(nn.functional.conv3d)
    _true_conv = staticmethod(TF.conv3d)
