"""One place for the numba setup shared by the compiled kernels (puffsum, flood_kernels, plume).

Threading: numba's GNU-OpenMP layer aborts any process forked after it ran, which would
break process-pool ensembles, so unless the user chose a layer via ``NUMBA_THREADING_LAYER``
(or ``_PRIORITY``) we prefer tbb, then workqueue (fork-safe). workqueue is not thread-safe,
so kernel calls are serialised with ``KERNEL_LOCK``.

Without numba (``HAVE_NUMBA`` false) ``njit`` returns the function unchanged and ``prange``
is ``range``, so the pure-Python/NumPy paths stay usable.
"""

from __future__ import annotations

import os
import threading

try:  # numba is a dependency; the NumPy paths keep the engines usable without it
    import numba
    from numba import get_num_threads, njit, prange

    HAVE_NUMBA = True
    if "NUMBA_THREADING_LAYER" not in os.environ and (
        "NUMBA_THREADING_LAYER_PRIORITY" not in os.environ
    ):
        # GNU OpenMP aborts any process forked after it ran (process-pool ensembles);
        # prefer the fork-safe layers. Calls are serialised with KERNEL_LOCK (workqueue is
        # not thread-safe).
        numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]
except ImportError:  # pragma: no cover
    numba = None
    HAVE_NUMBA = False
    prange = range

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        """Stand-in for ``numba.njit``: returns the function unchanged."""

        def wrap(fn):
            return fn

        return wrap if not args or not callable(args[0]) else args[0]

    def get_num_threads() -> int:  # type: ignore[no-redef]
        """numba's thread count stand-in: 1."""
        return 1


BACKENDS = ("numba", "numpy")
"""Backends of the compiled engines: "numba" (compiled) or "numpy" (reference path)."""

KERNEL_LOCK = threading.Lock()
"""Serialises calls of parallel kernels (numba's workqueue layer is not thread-safe)."""
