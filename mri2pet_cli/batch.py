"""Run one function over many subjects: a progress bar, optional worker processes, failures kept."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from mri2pet_cli.console import tracked, working_on
from mri2pet_cli.errors import Mri2PetError


@dataclass
class BatchResult:
    done: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False  # Ctrl-C: what was finished is kept, the rest not run


def limit_threads(threads: int) -> None:
    """Give each worker process its share of the cores (torch, SimpleITK, BLAS) instead of all of them."""
    import os

    os.environ["OMP_NUM_THREADS"] = str(threads)
    import SimpleITK as sitk
    import torch

    torch.set_num_threads(threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def worker_threads(jobs: int) -> int:
    import os

    return max(1, (os.cpu_count() or 1) // jobs)


def _call(func: Callable, item: Any, name: str) -> tuple[bool, Any, float]:
    start = time.perf_counter()
    with working_on(name):
        try:
            return True, func(item), time.perf_counter() - start
        except Mri2PetError as exc:
            return False, without_subject(str(exc), name), time.perf_counter() - start


def without_subject(message: str, subject: str) -> str:
    """The message without a leading ``subject: `` (the summary puts the id in front once)."""
    return message.removeprefix(f"{subject}: ")


def run_batch(
    func: Callable,
    items: Sequence,
    key: Callable[[Any], str],
    *,
    jobs: int = 1,
    label: str = "",
    keep_partial: bool = False,
) -> BatchResult:
    """Call ``func(item)`` for every item; a user error in one item does not stop the others.

    Ctrl-C stops the batch: with ``keep_partial`` the result so far comes back marked ``interrupted`` (for
    the caller to record it, then stop); otherwise the interrupt goes on at once.

    Only :class:`Mri2PetError` is caught as a failure of that item; anything else is a bug and stops the batch.
    """
    result = BatchResult()
    with tracked(label, len(items)) as advance:
        if jobs > 1 and len(items) > 1:
            pool = ProcessPoolExecutor(max_workers=jobs, initializer=limit_threads, initargs=(worker_threads(jobs),))
            futures = {pool.submit(_call, func, item, key(item)): key(item) for item in items}
            try:
                for future in as_completed(futures):
                    ok, value, seconds = future.result()
                    _record(result, futures[future], ok, value, seconds, advance)
            except KeyboardInterrupt:
                result.interrupted = True
            finally:
                pool.shutdown(wait=not result.interrupted, cancel_futures=True)
        else:
            try:
                for item in items:
                    ok, value, seconds = _call(func, item, key(item))
                    _record(result, key(item), ok, value, seconds, advance)
            except KeyboardInterrupt:
                result.interrupted = True
    if result.interrupted and not keep_partial:
        raise KeyboardInterrupt
    return result


def _record(result: BatchResult, name: str, ok: bool, value: Any, seconds: float, advance: Callable) -> None:
    (result.done if ok else result.failed)[name] = value
    advance(name, f"ok ({seconds:.1f} s)" if ok else f"FAILED: {value}")
