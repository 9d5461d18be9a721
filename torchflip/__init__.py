"""torchflip: true (kernel-flipped) convolution for PyTorch.

torch.nn's "convolution" layers compute cross-correlation,
``y[i] = sum_k x[i + k] w[k]``. torchflip computes true convolution,
``y[i] = sum_k x[i + k] w[K - 1 - k]``, with compiled operators
(``torch.ops.torchflip.*``), drop-in layers (:mod:`torchflip.nn`), exact
converters (:func:`convert`, :func:`revert`) and scipy.signal-style functions
(:mod:`torchflip.signal`).
"""

from torchflip import _extension

_extension.load()

from torchflip._decompositions import decompositions  # noqa: E402
from torchflip import _inductor  # noqa: E402
from torchflip import nn  # noqa: E402
from torchflip import signal  # noqa: E402
from torchflip.convert import convert, revert  # noqa: E402

_inductor.register_if_loaded()

__version__ = "0.1.0"

__all__ = ["nn", "signal", "convert", "revert", "decompositions", "__version__"]
