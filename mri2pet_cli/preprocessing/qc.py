"""Quality checks of a registered T1 (and PET): what is measured, the limits, and the refusal message."""

from __future__ import annotations

import numpy as np

from mri2pet_cli.errors import ProcessingError

QC_MODES = ("strict", "warn")


BRAIN_VOLUME_ML = (700.0, 2400.0)


MIN_MASK_DICE = 0.85


# Contrast-free checks (issue 12): a rank correlation survives any monotone T1 contrast (1.5 T, contrast
# enhanced, any scanner) but not a reversed one (T2, PET); WM brighter than GM is what makes a T1.
# Evidence (benchmarks/results/preprocess_qc.json, the 120-subject v2 cohort): positives rank >= 0.70, WM/GM >= 1.29;
# negatives: T2-like -0.46 / 0.26, PET -0.20 / 0.47, a T1 registered 20 deg and 12 mm off 0.34 (Dice 0.83).
MIN_T1_RANK_CORRELATION = 0.45


MIN_WM_TO_GM_RATIO = 1.08


MIN_PET_GM_CORRELATION = 0.3


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2.0 * np.logical_and(a, b).sum() / total) if total else 0.0


def registration_checks(warped: np.ndarray, warped_mask: np.ndarray, maps) -> dict:
    """Quality figures of a T1 brought to MNI: overlap, contrast-free agreement, T1 contrast direction."""
    from scipy import stats

    inside = maps.brain_mask
    gm, wm = (maps.gm > 0.6) & warped_mask, (maps.wm > 0.9) & warped_mask
    gm_level = float(np.median(warped[gm])) if gm.any() else 0.0
    wm_level = float(np.median(warped[wm])) if wm.any() else 0.0
    return {
        "mask_dice_with_template": dice(warped_mask, maps.brain_mask),
        "t1_rank_correlation_with_template": float(stats.spearmanr(warped[inside], maps.t1[inside])[0]),
        "t1_correlation_with_template": float(np.corrcoef(warped[inside], maps.t1[inside])[0, 1]),
        "wm_to_gm_ratio": wm_level / gm_level if gm_level > 0 else 0.0,
    }


def check_registration(checks: dict, name: str) -> None:
    """Raise ProcessingError naming ``name`` when the registration fails a check."""
    problems = registration_problems(checks)
    if problems:
        raise registration_error(name, problems)


def registration_error(name: str, problems: list[str]) -> ProcessingError:
    return ProcessingError(
        f"{name}: registration to MNI failed: " + "; ".join(problems),
        hint="is this a T1-weighted head MRI? --qc warn writes the outputs anyway, with the failed checks",
    )


def registration_check_table(checks: dict) -> list[dict]:
    """Each registration check: what it measures, its value, the rule, pass or fail, and the failure in words."""
    dice_value = checks["mask_dice_with_template"]
    rank = checks["t1_rank_correlation_with_template"]
    ratio = checks["wm_to_gm_ratio"]
    scales = checks["scale_factors"]
    return [
        {
            "check": "brain overlap with the MNI template (Dice)",
            "value": f"{dice_value:.3f}",
            "rule": f">= {MIN_MASK_DICE}",
            "passed": dice_value >= MIN_MASK_DICE,
            "problem": f"brain overlap with the MNI template is {dice_value:.2f} (< {MIN_MASK_DICE})",
        },
        {
            "check": "rank correlation with the MNI T1",
            "value": f"{rank:.3f}",
            "rule": f">= {MIN_T1_RANK_CORRELATION}",
            "passed": rank >= MIN_T1_RANK_CORRELATION,
            "problem": f"rank correlation with the MNI T1 is {rank:.2f} (< {MIN_T1_RANK_CORRELATION})",
        },
        {
            "check": "white / grey matter intensity (T1 contrast)",
            "value": f"{ratio:.2f}",
            "rule": f">= {MIN_WM_TO_GM_RATIO}",
            "passed": ratio >= MIN_WM_TO_GM_RATIO,
            "problem": f"white matter is not brighter than grey matter (WM/GM {ratio:.2f} "
            f"< {MIN_WM_TO_GM_RATIO}): not a T1-weighted contrast",
        },
        {
            "check": "registration scale factors",
            "value": ", ".join(f"{v:.2f}" for v in scales),
            "rule": "0.6-1.5",
            "passed": 0.6 <= min(scales) and max(scales) <= 1.5,
            "problem": f"implausible scaling {scales}",
        },
    ]


def registration_problems(checks: dict) -> list[str]:
    """The registration checks that failed, each in words (empty when all pass)."""
    return [row["problem"] for row in registration_check_table(checks) if not row["passed"]]
