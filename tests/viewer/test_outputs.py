"""Run outputs a person looks at: the HTML report and the 3D render."""

import os
import re

import numpy as np
import pytest

from citytwin.scenarios.run.kernel import simulate
from citytwin.scenarios.run.prepare import prepare
from citytwin.scenarios.spec.scenario import load_scenario
from tests.scenarios.conftest import short_scenario


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    import yaml

    folder = tmp_path_factory.mktemp("viewer")
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(short_scenario()))
    run = prepare(load_scenario(path), source=str(path), base_dir=folder)
    result = simulate(run, folder / "run")
    return run, result


def test_report_has_timeline_warnings_and_plots(finished_run):
    from citytwin.viewer.report import write_report

    run, result = finished_run
    html = write_report(result.archive_path, run.twin,
                        result.run_dir / "report.html").read_text()
    assert "<h2>Timeline</h2>" in html and "first detection" in html
    first = result.warnings[0]
    assert first.warning_id in html and first.level_name in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 2
    assert "Time to first detection" in html
    assert "http://" not in html and "https://" not in html  # self-contained: no CDN


def test_render_writes_a_picture_of_the_plume(finished_run):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    from PIL import Image

    from citytwin.viewer.render import load_fields, render_run

    run, result = finished_run
    t_s, fields = load_fields(result.run_dir / "hazard_field.npz")
    assert fields and np.nanmax(fields[0][3]) > 1.0
    png = render_run(run.twin, result.run_dir / "hazard_field.npz",
                     result.run_dir / "render.png", window_size=(400, 300))
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert img.shape == (300, 400, 3)
    assert img.std() > 10  # not a blank frame
    # The inferno_r colour map gives the plume warm, low-blue pixels nothing else has.
    warm = (img[..., 0] > 150) & (img[..., 2] < 90) & (img[..., 0] - img[..., 2] > 100)
    assert warm.sum() > 50
