"""argminn_plugin: ARGMINN and the Fourier attribution prior for the tangermeme/bpnet-lite ecosystem."""

import os as _os

__version__ = "0.1.0"

# numba (used by this package's overlap kernels and, behind the scenes, by tangermeme, memelite and
# bpnet-lite's PeakGenerator) would otherwise pick its OpenMP threading layer, which shares libgomp
# with PyTorch and, once started, runs PyTorch's parallel regions on every core with spinning
# threads whatever `torch.set_num_threads` / OMP_NUM_THREADS say: several times slower on a shared
# CPU. The "workqueue" layer uses plain threads and leaves PyTorch alone. It must be chosen before
# the first parallel numba call in the process; a layer set through NUMBA_THREADING_LAYER wins.
if "NUMBA_THREADING_LAYER" not in _os.environ:
    try:
        import numba as _numba
    except ImportError:  # pragma: no cover - numba is a dependency
        pass
    else:
        _numba.config.THREADING_LAYER = "workqueue"

from .model import ARGMINN  # noqa: E402,F401
from .fourier_prior import fourier_prior_loss  # noqa: E402,F401
