from importlib import resources
from pathlib import Path

import pytest
import yaml

DEMO = Path(str(resources.files("citytwin.scenarios").joinpath("data/gas_leak_drill.yaml")))


def short_scenario(**changes) -> dict:
    """The demo drill on the tiny city, 15 minutes: quick, and the leak is still detected."""
    data = yaml.safe_load(DEMO.read_text())
    data["twin"] = {"synthetic": {"seed": 7, "size": "tiny"}}
    data["duration_s"] = 900
    data["hazards"][0]["start_s"] = 60
    data["outputs"] = {"observations": "all", "report": False, "render": False}
    data.update(changes)
    return data


@pytest.fixture
def write_scenario(tmp_path):
    def write(data: dict, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write
