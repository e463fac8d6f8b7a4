"""One run: prepare a scenario, the SimPy kernel, the archive writer and reader, cascades."""
