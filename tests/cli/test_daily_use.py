"""A lab's daily use: exit codes, logs a batch script can read, subject tables, reports, help."""

import gzip
import json
from html.parser import HTMLParser

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from mri2pet_cli.cli import app
from mri2pet_cli.evaluation.run import choose_evaluation_subjects
from mri2pet_cli.inference.outputs import bids_label, output_paths
from mri2pet_cli.models.registry import build_model
from mri2pet_cli.models.weights import save_weights
from mri2pet_cli.preprocessing.inputs import check_subject_files, find_subjects

runner = CliRunner()
COMMANDS = (
    ["simulate"],
    ["preprocess"],
    ["synthesize"],
    ["train"],
    ["evaluate"],
    ["merge"],
    ["models", "list"],
    ["models", "info"],
    ["models", "verify"],
)


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("w")
    return save_weights(build_model("unet", {"base": 4, "levels": 2}), folder, {"version": "test"}).weights


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_reads_well(command):
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for python_type in ("<bool>", "<list[", "<str>", "{inputs}"):
        assert python_type not in result.output, (command, python_type)
    if command == ["train"]:
        for option in ("--epochs", "--batch-size", "--seed"):
            line = next(x for x in result.output.splitlines() if option in x)
            assert len(line.split(option, 1)[1].strip(" │")) > 12, line  # has help text, not just a type


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synthesize", "nosuch.nii.gz"], "file not found"),
        (["synthesize", "README.md"], "not a NIfTI file name"),
        (["synthesize", "README.md", "--skull-strip", "foo"], "unknown --skull-strip 'foo'"),
        (["synthesize", "README.md", "--age", "20"], "outside 30-100"),
        (["synthesize", "README.md", "--scan-age", "70"], "--scan-age goes with the age"),
        (["synthesize", "README.md", "--qc", "lax"], "unknown --qc"),
        (["synthesize", "README.md", "--temperature", "-1"], "negative"),
        (["synthesize", "README.md", "--model", "dual-glo"], "did you mean 'dual-glow'"),
        (["preprocess", "nosuch.nii.gz", "-o", "x"], "file not found"),
        (["preprocess", "README.md", "-o", "x", "--skull-strip", "foo"], "unknown --skull-strip"),
        (["simulate", "x", "--variety", "fog"], "fog"),
        (["train", "--model", "unet", "--data", "nosuch", "-o", "x"], "data folder not found"),
        (["train", "--model", "unet", "--data", ".", "-o", "x", "--precision", "fp8"], "unknown --precision"),
        (["evaluate", "--data", "nosuch", "--model", "unet"], "not found"),
        (["evaluate", "--data", ".", "--model", "unet", "--subjects", "nosuch.txt"], "not found"),
        (["models", "info", "unte"], "did you mean 'unet'"),
    ],
)
def test_bad_input_or_options_exit_2_before_any_work(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent if "README.md" not in args else _repo_root())
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert "subjects failed" not in result.output  # refused, not counted as a failed subject
    assert not (tmp_path.parent / "x").exists()


def _repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


def test_batch_with_two_broken_subjects(simulated_cohort, small_weights, tmp_path):
    """Good subjects are written, broken ones listed once each, exit code 1, one readable line per event."""
    folder = tmp_path / "t1s"
    folder.mkdir()
    good = simulated_cohort / "sub-001" / "anat" / "sub-001_T1w.nii.gz"
    (folder / "sub-001_T1w.nii.gz").write_bytes(good.read_bytes())
    (folder / "sub-002_T1w.nii.gz").write_text("not an image")
    raw = gzip.decompress(good.read_bytes())
    (folder / "sub-003_T1w.nii.gz").write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    out = tmp_path / "a-rather-long-output-folder-name-so-that-paths-pass-eighty-columns" / "out"
    result = runner.invoke(app, ["synthesize", str(folder), "--weights", str(small_weights), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert (out / "sub-001" / "sub-001_space-T1w_desc-unet_pet.nii.gz").exists()
    assert "2 of 3 subjects failed" in result.output
    lines = result.output.splitlines()
    assert any(line.startswith("  sub-002: ") and "not a readable NIfTI" in line for line in lines)
    assert any(line.startswith("  sub-003: ") and "truncated" in line for line in lines)
    assert "sub-003: sub-003" not in result.output  # the id once
    written = next(line for line in lines if line.startswith("sub-001") and "pet.nii.gz" in line)
    assert str(out) in written  # the long path on one line, not wrapped
    assert any(line.startswith("sub-001: registration to MNI") for line in lines)  # which stage runs
    assert any(line.startswith("synthesizing 1/2: sub-001 ok") for line in lines)


def test_log_json_is_one_object_per_line(tmp_path):
    result = runner.invoke(app, ["--log-json", "simulate", str(tmp_path / "c"), "--n", "1", "--variety", "none"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    assert events and all({"time", "event", "message"} <= set(e) for e in events)
    assert events[-1]["event"] == "done" and events[-1]["n"] == 1
    bad = runner.invoke(app, ["--log-json", "synthesize", "nosuch.nii.gz"])
    assert bad.exit_code == 2 and json.loads(bad.output.splitlines()[-1])["exit_code"] == 2


def test_participants_tsv_and_sessions_find_each_t1(tmp_path, tiny_image):
    for sub, ses in (("sub-01", None), ("sub-02", "ses-1"), ("sub-02", "ses-2")):
        anat = tmp_path / sub / (ses or "") / "anat"
        anat.mkdir(parents=True)
        name = "_".join(x for x in (sub, ses, "T1w") if x)
        nib.save(tiny_image, str(anat / f"{name}.nii.gz"))
    (tmp_path / "participants.tsv").write_text("participant_id\tage\tsex\nsub-01\t71\tF\nsub-02\tn/a\tM\n")
    from_table = find_subjects([tmp_path / "participants.tsv"])
    assert [s.subject_id for s in from_table] == ["sub-01", "sub-02_ses-1", "sub-02_ses-2"]
    assert from_table[0].age == 71 and from_table[1].age is None
    assert [s.subject_id for s in find_subjects([tmp_path])] == [s.subject_id for s in from_table]
    (tmp_path / "other.tsv").write_text("participant_id\tt1\tage\nsub-x\tsub-01/anat/sub-01_T1w.nii.gz\t80\n")
    relative = find_subjects([tmp_path / "other.tsv"])
    assert relative[0].t1 == tmp_path / "sub-01" / "anat" / "sub-01_T1w.nii.gz"  # read from the table's folder


def test_unreadable_files_are_found_before_any_work(tmp_path, tiny_path):
    (tmp_path / "bad.nii.gz").write_text("no")
    good, bad = check_subject_files(find_subjects([tiny_path, tmp_path / "bad.nii.gz"]))
    assert [s.subject_id for s in good] == ["tiny"] and list(bad) == ["bad"]


def test_bids_names_and_evaluation_subject_choice():
    assert bids_label("dual-glow") == "dualglow" and bids_label("72.5") == "72p5"
    names = [p.name for p in output_paths(_repo_root(), "sub-01", "dual-glow", 72.5).values()]
    assert "sub-01_age-72p5_space-T1w_desc-dualglow_stat-std_pet.nii.gz" in names
    card = {"training_data": {"split": {"test": ["sub-001", "sub-009"], "train": ["sub-002", "sub-003"]}}}
    here = ["sub-001", "sub-002", "sub-003", "sub-004"]
    own = choose_evaluation_subjects(here, card, True, None, None)
    assert own["scored"] == ["sub-001"] and own["missing"] == ["sub-009"] and own["train"] == ["sub-002", "sub-003"]
    new = choose_evaluation_subjects(here, card, False, None, None)
    assert new["scored"] == here and new["train"] is None and new["baseline"].startswith("leave-one-out")
    one = choose_evaluation_subjects(here, card, False, ["sub-004"], None)
    assert one["train"] is None and one["baseline"].startswith("none")


def test_report_html_is_well_formed_and_reads_like_a_report(simulated_cohort, small_weights, tmp_path):
    t1 = simulated_cohort / "sub-001" / "anat" / "sub-001_T1w.nii.gz"
    result = runner.invoke(app, ["synthesize", str(t1), "--weights", str(small_weights), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "sub-001" / "sub-001_desc-unet_report.html").read_text()

    class Checker(HTMLParser):
        VOID = {"meta", "img", "br", "hr", "link"}

        def __init__(self):
            super().__init__()
            self.stack, self.headings, self.errors, self.heading = [], [], [], False

        def handle_starttag(self, tag, attrs):
            if tag not in self.VOID:
                self.stack.append(tag)
            self.heading = tag in ("h1", "h2")

        def handle_endtag(self, tag):
            if not self.stack or self.stack.pop() != tag:
                self.errors.append(tag)

        def handle_data(self, data):
            if self.heading and data.strip():
                self.headings.append(data.strip())
                self.heading = False

    checker = Checker()
    checker.feed(page)
    assert not checker.errors and not checker.stack
    for heading in ("Subject", "Picture", "Key regions", "Quality checks", "Model and weights", "Timings"):
        assert any(h.startswith(heading) for h in checker.headings), heading
    assert "Research use only" in page and "sha256" in page and "{" not in page.split("</style>")[1]
    # phone widths: a viewport, and every table scrolls inside its own box
    assert 'name="viewport"' in page and page.count("<table>") == page.count('<div class="scroll"><table>') > 3
    record = json.loads((tmp_path / "sub-001" / "sub-001_desc-unet_synthesis.json").read_text())
    assert record["key_regions"][0]["region"] == "posterior cingulate"
    assert np.isfinite(record["key_regions"][0]["suvr"])


def test_ctrl_c_exits_130(monkeypatch, tiny_path):
    import mri2pet_cli.preprocessing.batch as batch

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "find_subjects", interrupted)
    result = runner.invoke(app, ["preprocess", str(tiny_path), "-o", str(tiny_path.parent / "x")])
    assert result.exit_code == 130 and "interrupted" in result.output


@pytest.mark.skipif(not __import__("shutil").which("chromium"), reason="no headless chromium installed here")
def test_report_renders_in_a_real_browser(simulated_cohort, small_weights, tmp_path):
    """Headless Chromium (Debian package `chromium`) loads the page, its image and tables."""
    import subprocess

    t1 = simulated_cohort / "sub-001" / "anat" / "sub-001_T1w.nii.gz"
    result = runner.invoke(app, ["synthesize", str(t1), "--weights", str(small_weights), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = tmp_path / "sub-001" / "sub-001_desc-unet_report.html"
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2400"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "<h2>Key regions" in dom and dom.count("<table>") >= 6 and "data:image/png;base64," in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*browser, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    pixels = __import__("matplotlib.image", fromlist=["imread"]).imread(str(shot))
    assert pixels.shape[:2] == (2400, 1200) and pixels[..., :3].std() > 0.05  # drawn, not blank
    # at phone width (390 px) nothing reaches past the screen's edge. Chromium's window cannot be narrower
    # than about 500 px, so the page itself is held to 390 px and the right edge of every element measured
    # (the page before this fix measured 779 px).
    probe = tmp_path / "probe.html"
    script = (
        "<script>document.documentElement.style.width = '390px'; var right = 0;"
        "document.querySelectorAll('body *').forEach(function (e) {"
        "right = Math.max(right, e.getBoundingClientRect().right); });"
        "document.body.dataset.right = Math.round(right);</script></body>"
    )
    probe.write_text(page.read_text().replace("</body>", script))
    phone = [*browser[:-1], "--window-size=390,844", "--virtual-time-budget=2000", "--dump-dom", probe.as_uri()]
    dom = subprocess.run(phone, capture_output=True, text=True, timeout=120).stdout
    right = int(__import__("re").search(r'data-right="(\d+)"', dom).group(1))
    assert right <= 390, right


@pytest.mark.parametrize("command", ["preprocess", "synthesize"])
def test_an_unwritable_output_folder_is_refused_before_any_work(command, tiny_path, tmp_path, monkeypatch):
    import mri2pet_cli.preprocessing.batch as batch

    def no_work(*args, **kwargs):
        raise AssertionError("the pipeline ran before the output folder was checked")

    monkeypatch.setattr(batch, "run_batch", no_work)
    as_file = tmp_path / "taken"
    as_file.write_text("a file where the folder should be")
    result = runner.invoke(app, [command, str(tiny_path), "-o", str(as_file)])
    assert result.exit_code == 2 and "is a file, not a folder" in result.output
    # cannot be made by anyone, root included: its parent is a file of /proc
    result = runner.invoke(app, [command, str(tiny_path), "-o", "/proc/version/mri2pet-out"])
    assert result.exit_code == 2 and "not writable" in result.output and "Traceback" not in result.output


def test_a_nearly_full_disk_is_refused(tmp_path, monkeypatch):
    import shutil

    from mri2pet_cli.errors import Mri2PetError
    from mri2pet_cli.io import check_output_dir

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=50 * 2**20))
    with pytest.raises(Mri2PetError, match="only 50 MB free"):
        check_output_dir(tmp_path / "out")
