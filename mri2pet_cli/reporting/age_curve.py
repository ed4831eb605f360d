"""The age series of one T1: mean SUVR of the key regions against the age input (CSV and plot)."""

from __future__ import annotations

from pathlib import Path

from mri2pet_cli.io import write_text_atomic

AGE_CURVE_SUVR = (0.6, 1.6)  # the age-curve y axis, fixed


def _write_age_curve(ages: list[float], means: list[dict], paths: dict[str, Path], title: str, overwrite: bool):
    from mri2pet_cli.reporting.figures import pyplot, save_figure

    regions = list(means[0])
    lines = ["age," + ",".join(r.replace(" ", "_") for r in regions)]
    lines += [f"{a:g}," + ",".join(f"{m[r]:.4f}" for r in regions) for a, m in zip(ages, means)]
    write_text_atomic("\n".join(lines) + "\n", paths["csv"], overwrite=overwrite)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for region in regions:
        ax.plot(ages, [m[region] for m in means], marker="o", label=region)
    values = [m[r] for m in means for r in regions]
    low, high = AGE_CURVE_SUVR
    ax.set_ylim(min(low, min(values) - 0.05), max(high, max(values) + 0.05))  # fixed: small changes look small
    ax.set_xlabel("age (years)")
    ax.set_ylabel("mean SUVR (cerebellar cortex = 1)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.text(0.01, -0.02, "Research use only. Same T1, only the age input changes.", fontsize=7)
    save_figure(fig, paths["png"])
