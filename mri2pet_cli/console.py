"""Shared terminal output: results on stdout, progress and errors on stderr.

On a terminal: rich progress bars whose description says which subject and stage runs.
Without one (batch scripts, logs): one plain line per event, never wrapped. With ``--log-json``:
one JSON object per line, for machines.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import render
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

_state: dict = {"json": False, "subject": None, "bar": None, "task": None}


def set_log_json(enabled: bool) -> None:
    _state["json"] = enabled


def log_json_enabled() -> bool:
    return bool(_state["json"])


def on_terminal() -> bool:
    return sys.stderr.isatty() and not _state["json"]


def say(message: str, *, event: str = "info", error: bool = False, **fields) -> None:
    """One event. ``message`` may hold rich markup; ``fields`` go into the JSON line only."""
    if _state["json"]:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "event": event, "message": render(message).plain}
        stream = sys.stderr if error else sys.stdout
        print(json.dumps(record | fields, default=str), file=stream, flush=True)
        return
    target = err_console if error else console
    bar = _state["bar"]
    (bar.console if bar is not None and not error else target).print(message, soft_wrap=True)


def progress_bar(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not on_terminal(),
    )


@contextmanager
def tracked(description: str, total: int) -> Iterator[Callable[..., None]]:
    """Progress over ``total`` items; yields ``advance(item="", status="")``, called after each item.

    Off a terminal every call is one log line: ``preprocessing 3/20: sub-003 ok (24.1 s)``.
    """
    done = 0
    with progress_bar() as bar:
        task = bar.add_task(description, total=total)
        previous = _state["bar"], _state["task"]
        _state["bar"], _state["task"] = (bar, task) if on_terminal() else (None, None)

        def advance(item: str = "", status: str = "") -> None:
            nonlocal done
            done += 1
            bar.update(task, advance=1, description=description)
            if not on_terminal() and (item or status):
                say(
                    f"{description} {done}/{total}: {item} {status}".rstrip(),
                    event="progress",
                    error=True,
                    stage=description,
                    done=done,
                    total=total,
                    subject=item,
                    status=status,
                )

        try:
            yield advance
        finally:
            _state["bar"], _state["task"] = previous


@contextmanager
def working_on(subject: str) -> Iterator[None]:
    """Name the subject that :func:`stage` reports (this process only)."""
    previous = _state["subject"]
    _state["subject"] = subject
    try:
        yield
    finally:
        _state["subject"] = previous


def stage(name: str) -> None:
    """Say which stage now runs: in the bar's description on a terminal, one log line otherwise."""
    subject = _state["subject"]
    text = f"{subject}: {name}" if subject else name
    bar, task = _state["bar"], _state["task"]
    if bar is not None:
        bar.update(task, description=text)
    elif not on_terminal():
        say(text, event="stage", error=True, subject=subject, stage=name)


@contextmanager
def training_progress(epochs: int) -> Iterator[Callable[[int, int, int, dict], None]]:
    """Yields ``report(epoch, step, steps, logs)`` for the training loop (``epoch`` counts from 0).

    The bar appears with the first step, so that it does not sit empty through preprocessing;
    each finished epoch is one line above it (or one log line off a terminal), counted from 1.
    """
    with progress_bar() as bar:
        task = None

        def report(epoch: int, step: int, steps: int, logs: dict) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task("training", total=steps * epochs)
                say(f"training: {steps} steps per epoch, epochs {epoch + 1}-{epochs}", event="stage", error=True)
            if "val_mae" in logs:
                say(
                    f"epoch {epoch + 1}/{epochs}: validation MAE {logs['val_mae']:.4f}"
                    + (f", loss {logs['loss']:.4f}" if "loss" in logs else "")
                    + (f", {logs['seconds']:.0f} s" if "seconds" in logs else ""),
                    event="epoch",
                    epoch=epoch + 1,
                    **logs,
                )
                return
            text = " ".join(f"{k} {v:.4f}" for k, v in logs.items())
            bar.update(task, completed=epoch * steps + step + 1, description=f"epoch {epoch + 1}/{epochs} {text}")

        yield report
