import nibabel as nib
import numpy as np
from typer.testing import CliRunner

from mri2pet_cli import __version__
from mri2pet_cli.cli import app

runner = CliRunner()


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "simulate" in result.output


def test_simulate_writes_cohort_and_refuses_overwrite(tmp_path):
    out = tmp_path / "cohort"
    result = runner.invoke(app, ["simulate", str(out), "--n", "1", "--seed", "2"])
    assert result.exit_code == 0, result.output
    t1 = nib.load(str(out / "sub-001" / "anat" / "sub-001_T1w.nii.gz"))
    assert t1.ndim == 3 and np.isfinite(t1.get_fdata()).all()
    again = runner.invoke(app, ["simulate", str(out), "--n", "1", "--seed", "2"])
    assert again.exit_code == 2
    assert "already exists" in again.output and "Traceback" not in again.output


def test_simulator_version_is_sim_version_and_does_not_clash_with_the_tools_version(tmp_path):
    out = tmp_path / "cohort"
    old = runner.invoke(app, ["simulate", str(out), "--version", "1"])
    assert old.exit_code == 2 and "--version" in old.output  # no such option of simulate
    beyond = runner.invoke(app, ["simulate", str(out), "--sim-version", "9"])
    assert beyond.exit_code == 2 and "--sim-version" in beyond.output
    assert not out.exists()
    help_text = runner.invoke(app, ["simulate", "--help"]).output
    assert "--sim-version" in help_text


def test_a_metrics_table_of_one_subject_shows_no_spread(capsys):
    from mri2pet_cli.cli.common import print_metrics_table

    one = {m: {"mean": 0.5, "std": 0.0, "n": 1} for m in ("mae", "psnr", "ssim", "ms_ssim", "pearson_r")}
    many = {m: {"mean": 0.5, "std": 0.1, "n": 4} for m in one}
    print_metrics_table({"unet": one, "dual-glow": many})
    out = capsys.readouterr().out
    assert "±0.000" not in out and "unet (n = 1)" in out and "0.500±0.100" in out
