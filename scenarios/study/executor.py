"""The executor seam of studies: anything with ``submit`` returning futures.

- ``SerialExecutor``: runs each task at ``submit`` (tests, debugging, one core).
- ``local_executor``: a ``ProcessPoolExecutor`` whose workers start from a *forkserver*
  (Linux; ``spawn`` elsewhere), never by forking this process: numba's OpenMP layer aborts
  a process forked after it ran, and a forked copy would inherit its thread pools. The
  forkserver imports the member code once, so each worker starts in milliseconds.
- ``--scheduler ADDRESS``: ``distributed.Client(address).get_executor()``: the same
  ``submit`` + ``as_completed`` code path on a Dask cluster.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager


class SerialExecutor(Executor):
    """Runs each task in the calling process when it is submitted."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as exc:  # KeyboardInterrupt propagates: the study stops
            fut.set_exception(exc)
        return fut


def default_workers() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (not Linux)
        return os.cpu_count() or 1


def _start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


#: How often (s) a worker checks that the process that started the study is still alive.
PARENT_CHECK_S = 1.0


def _exit_with(parent_pid: int) -> None:
    """Worker initializer: end this worker when the study's process is gone (killed by
    SIGKILL, it cannot shut its pool down; a worker started from the forkserver is not its
    child, so the kernel's parent-death signal would not reach it)."""
    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)  # no cleanup to run: the study's folder keeps what finished
            except PermissionError:  # pragma: no cover (a pid reused by another user)
                os._exit(1)

    threading.Thread(target=watch, name="citytwin-parent-watch", daemon=True).start()


def local_executor(max_workers: int | None = None) -> Executor:
    """A process pool of ``max_workers`` (default: the CPUs) started safely (see above),
    whose workers end by themselves when this process dies; one worker means the serial
    executor (no pickling, easier debugging)."""
    n = max_workers or default_workers()
    if n <= 1:
        return SerialExecutor()
    ctx = multiprocessing.get_context(_start_method())
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["citytwin.scenarios.study.runner",
                                    "citytwin.scenarios.study.metrics",
                                    "citytwin.scenarios.run.kernel"])
    return ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_exit_with,
                               initargs=(os.getpid(),))


@contextmanager
def executor_for(workers: int | None = None,
                 scheduler: str | None = None) -> Iterator[tuple[Executor, int]]:
    """(executor, worker count) for the CLI: a Dask cluster when ``scheduler`` is given,
    else local processes. The executor is shut down (the client closed) on exit."""
    if scheduler:
        from distributed import Client

        client = Client(scheduler)
        try:
            n = workers or max(1, sum(client.nthreads().values()))
            yield client.get_executor(pure=False), n
        finally:
            client.close()
        return
    n = workers or default_workers()
    executor = local_executor(n)
    try:
        yield executor, n
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
