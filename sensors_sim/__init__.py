"""Simulated sensors: types (``catalogue``), a network placed on twin assets with cadence
groups (``network``) and the vectorised measurement model with faults (``measurement``)."""
