"""The ``citytwin`` command line (all argparse lives here; the only part importing viewer/)."""
