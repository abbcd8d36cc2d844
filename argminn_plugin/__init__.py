"""argminn_plugin: ARGMINN and the Fourier attribution prior for the tangermeme/bpnet-lite ecosystem."""

__version__ = "0.1.0"

from .model import ARGMINN  # noqa: E402,F401
from .fourier_prior import fourier_prior_loss  # noqa: E402,F401
