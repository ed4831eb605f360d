"""Which subjects a batch has finished: each subject's record, written after all its other files,
names the request it answered (inputs' hashes, model, options, tool version) and every file's sha256.

Rerunning a batch skips a subject whose record answers the same request and whose files still hash as
recorded; files without such a record (a killed run's leftovers, or one a user broke) are redone; the
finished outputs of another request are kept unless ``--overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=64)
def _hash_while_unchanged(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def input_sha256(path: str | Path) -> str:
    """sha256 of an input file, computed once per process while its size and modification time stay
    (a subject's request is asked for several times: skip check, reuse check, record)."""
    stat = os.stat(path)
    return _hash_while_unchanged(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def output_hashes(paths: list[Path], folder: Path) -> dict[str, str]:
    """sha256 of each existing file, keyed by its path relative to ``folder`` (the record's own)."""
    folder = Path(folder).resolve()  # relative and absolute paths of the same folder alike
    return {str(Path(p).resolve().relative_to(folder)): sha256_file(p) for p in paths if Path(p).exists()}


def _read(record_path: Path) -> dict | None:
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def finished_record(record_path: Path, request: dict) -> dict | None:
    """The record, where it answers ``request`` and each file it lists is there with its recorded hash."""
    record = _read(record_path) if record_path.exists() else None
    if record is None or record.get("request") != request or not record.get("output_sha256"):
        return None
    folder = record_path.parent
    for name, digest in record["output_sha256"].items():
        path = folder / name
        if not path.exists() or sha256_file(path) != digest:
            return None
    return record


def may_replace(record_path: Path, request: dict, overwrite: bool) -> bool:
    """Whether a subject's existing files may be written over: with ``overwrite``; where no readable record
    finishes them (a killed run's); or where they were written for this same request (a redo)."""
    if overwrite or not record_path.exists():
        return True
    record = _read(record_path)
    return record is None or record.get("request") == request
