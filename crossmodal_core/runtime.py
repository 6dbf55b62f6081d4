"""How many CPU threads the numerical libraries may use.

By default NumPy's BLAS and torch use every core. That is the fastest on an idle machine
(TNN-C-CCA, 10 epochs on the VEGAS-shaped set, 2 cores: 16.9 s with 2 threads, 23.2 s with 1),
but when other jobs share the cores, threads that spin-wait for each other make a run several
times slower (124 s against 68 s for the same run with 1 thread on a busy machine). A script,
a notebook or ``python -m crossmodal_core --threads N`` can therefore cap them.

Note that a deep model trained with a different number of threads may differ in the last
digits: float sums are reduced in another order. Runs with the same seed and the same thread
count are identical.
"""

from __future__ import annotations

import os

__all__ = ["THREAD_ENV_VARS", "limit_threads"]

#: read by OpenMP, OpenBLAS, MKL and BLIS when a library loads
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def limit_threads(n_threads: int, torch: bool = True) -> int:
    """Let BLAS, OpenMP and torch use at most ``n_threads`` threads in this process.

    Libraries that are already loaded are capped through ``threadpoolctl``; the environment
    variables are set too, so that libraries loaded later (and child processes) start with the
    same cap. With ``torch=True`` torch's intra-op pool is set as well (importing torch if it
    is installed and not loaded yet).

    Parameters
    ----------
    n_threads : int, >= 1

    Returns
    -------
    int: ``n_threads``
    """
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}")
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n_threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n_threads)
    if torch:
        try:
            import torch as _torch
        except ImportError:
            return n_threads
        _torch.set_num_threads(n_threads)
    return n_threads
