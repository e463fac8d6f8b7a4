"""assets3d package."""
