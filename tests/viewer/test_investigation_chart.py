"""The investigation report's level-over-time steps, by hand."""

import pandas as pd

from citytwin.viewer.investigation_report import level_steps


def test_level_steps_follow_open_warnings():
    w = pd.DataFrame({
        "warning_id": ["W-1", "W-2", "W-1", "W-2", "W-1"],
        "event": ["raised", "raised", "escalated", "cancelled", "cleared"],
        "known_at_s": [100.0, 150.0, 200.0, 250.0, 400.0],
        "level": [2, 3, 4, 3, 0],
    })
    t, lv = level_steps(w.iloc[[1, 0, 2, 3, 4]])  # in any row order: by the time known
    assert t.tolist() == [0.0, 100.0, 150.0, 200.0, 250.0, 400.0]
    assert lv.tolist() == [0, 2, 3, 4, 4, 0]   # W-2's cancel leaves W-1 red; then all clear
    t, lv = level_steps(w.iloc[:0])
    assert t.tolist() == [0.0] and lv.tolist() == [0]
