"""Drills: exercise plans, injects, pacing, players and after-action scoring."""
