"""Reading YAML input files (scenarios, rulebooks, catalogues) with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import yaml

from twin.errors import InputError


def parse_yaml_mapping(text: str, source: str, what: str) -> dict:
    """Parse ``text`` as a YAML mapping; InputError naming ``source`` otherwise."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(source, f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(source, f"a {what} must be a YAML mapping")
    return data


def read_yaml_mapping(path: str | Path, what: str) -> dict:
    """Read the file at ``path`` (UTF-8) as a YAML mapping describing a ``what``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), f"cannot read {what}: {exc.strerror}") from exc
    return parse_yaml_mapping(text, str(path), what)
