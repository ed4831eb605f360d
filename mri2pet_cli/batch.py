"""Run one function over many subjects: a progress bar, optional worker processes, failures kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from .console import tracked
from .errors import Mri2PetError


@dataclass
class BatchResult:
    done: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


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


def _call(func: Callable, item: Any) -> tuple[bool, Any]:
    try:
        return True, func(item)
    except Mri2PetError as exc:
        return False, str(exc)


def run_batch(
    func: Callable, items: Sequence, key: Callable[[Any], str], *, jobs: int = 1, label: str = ""
) -> BatchResult:
    """Call ``func(item)`` for every item; a user error in one item does not stop the others.

    Only :class:`Mri2PetError` is caught as a failure of that item; anything else is a bug and stops the batch.
    """
    result = BatchResult()
    with tracked(label, len(items)) as advance:
        if jobs > 1 and len(items) > 1:
            with ProcessPoolExecutor(
                max_workers=jobs, initializer=limit_threads, initargs=(worker_threads(jobs),)
            ) as pool:
                futures = {pool.submit(_call, func, item): key(item) for item in items}
                for future in as_completed(futures):
                    ok, value = future.result()
                    (result.done if ok else result.failed)[futures[future]] = value
                    advance()
        else:
            for item in items:
                ok, value = _call(func, item)
                (result.done if ok else result.failed)[key(item)] = value
                advance()
    return result
