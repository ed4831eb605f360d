"""The report montage: direction letters and MNI coordinates never overlap."""

import numpy as np

from mri2pet_cli.reporting import report
from mri2pet_cli.space.grid import default_grid


def test_orientation_letters_and_coordinates_do_not_overlap(tmp_path, monkeypatch):
    grid = default_grid()
    volume = np.random.default_rng(0).uniform(0, 1, grid.shape).astype(np.float32)
    # three rows, as a report with a std map: the smallest images
    panels = [(name, volume, "gray", (0.0, 1.0), "a.u.") for name in ("T1", "PET", "std")]
    drawn = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: drawn.append(fig) or path)
    report.montage(panels, grid, "test", tmp_path / "m.png")
    fig = drawn[0]
    fig.canvas.draw()  # lays the axes out (equal aspect) as the saved PNG has them
    renderer = fig.canvas.get_renderer()
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 9
    for ax in image_axes:
        texts = [t for t in [*ax.texts, ax.xaxis.label] if t.get_text()]
        assert any("MNI" in t.get_text() for t in texts)  # the slice's coordinate is shown
        assert sum(len(t.get_text()) == 1 for t in texts) == 4  # and the four direction letters
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
        for i, (name_a, a) in enumerate(boxes):
            for name_b, b in boxes[i + 1 :]:
                assert not a.overlaps(b), f"{name_a!r} overlaps {name_b!r}"
