"""Every numbered example runs at CI size (its --quick switch) and exits cleanly."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(script, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_example_01_plot_is_a_readable_grid(tmp_path):
    # one row of ten panels was a 3000 × 320 px strip
    import matplotlib.image as mpimg

    script = next(p for p in EXAMPLES if p.stem.startswith("01_"))
    png = tmp_path / "rhel.png"
    proc = subprocess.run(
        [sys.executable, str(script), "--plot", str(png)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    height, width = mpimg.imread(png).shape[:2]
    assert width <= 1200 and width / height <= 2
