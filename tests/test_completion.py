"""Finished-subject records: hashes keyed the same way whether the output folder was given relative or absolute."""

import json
from pathlib import Path

from mri2pet_cli.completion import finished_record, output_hashes, sha256_file


def test_hashes_of_relative_and_absolute_paths_agree_and_a_changed_file_unfinishes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    written = tmp_path / "sub" / "a.nii.gz"
    written.write_bytes(b"volume")
    expected = {"a.nii.gz": sha256_file(written)}
    assert output_hashes([written], Path("sub")) == output_hashes([Path("sub/a.nii.gz")], tmp_path / "sub") == expected
    record = Path("sub") / "record.json"
    record.write_text(json.dumps({"request": {"model": "unet"}, "output_sha256": expected}))
    assert finished_record(record, {"model": "unet"}) is not None
    assert finished_record(record, {"model": "pix2pix-3d"}) is None
    written.write_bytes(b"changed")
    assert finished_record(record, {"model": "unet"}) is None
