"""Reading YAML input files (scenarios, rulebooks, catalogues) with errors that name the file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from citytwin.twin.errors import InputError


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


def load_yaml_model(source: str | Path, model: type[BaseModel], what: str, *,
                    package: str, default_resource: str, default_name: str = "default"):
    """Validate a YAML file (or the packaged default when ``source == default_name``) as a
    pydantic ``model``; InputError naming the file and the field path on any problem."""
    if str(source) == default_name:
        path_text = f"{package}/{default_resource}"
        text = resources.files(package).joinpath(default_resource).read_text(encoding="utf-8")
        data = parse_yaml_mapping(text, path_text, what)
    else:
        path_text = str(source)
        data = read_yaml_mapping(source, what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise input_error_from(path_text, exc) from exc


def input_error_from(source: str, exc: ValidationError,
                     drop: tuple[str, ...] = ()) -> InputError:
    """The first pydantic error as an InputError naming ``source`` and the field path (tags
    in ``drop`` — e.g. discriminated-union kinds — and validator names left out of the path),
    with a count of further problems."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]
                     if str(p) not in drop and not str(p).startswith("function-"))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    more = len(exc.errors()) - 1
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InputError(source, msg, field=field or None)
