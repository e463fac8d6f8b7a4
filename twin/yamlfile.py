"""Reading YAML input files (scenarios, rulebooks, catalogues) with errors that name the file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from citytwin.twin.errors import InputError


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last
    silently: a repeated hazard or level would quietly replace the first)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            repeated = key in seen
        except TypeError:  # an unhashable key: the ordinary constructor says so
            break
        if repeated:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, f"the key {key!r} is given twice",
                key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _unique_mapping)


def load_yaml_text(text: str, source: str) -> object:
    """The YAML document in ``text`` (keys unique); InputError naming ``source`` otherwise."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise InputError(source, f"not valid YAML: {exc}") from exc


def read_yaml(path: str | Path, what: str) -> object:
    """The YAML document in the file at ``path`` (UTF-8 text describing a ``what``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), f"cannot read {what}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not a text file ({what} files are UTF-8 YAML; byte "
                         f"{exc.start} is not UTF-8)") from exc
    return load_yaml_text(text, str(path))


def parse_yaml_mapping(text: str, source: str, what: str) -> dict:
    """Parse ``text`` as a YAML mapping; InputError naming ``source`` otherwise."""
    data = load_yaml_text(text, source)
    if not isinstance(data, dict):
        raise InputError(source, f"a {what} must be a YAML mapping")
    return data


def read_yaml_mapping(path: str | Path, what: str) -> dict:
    """Read the file at ``path`` (UTF-8) as a YAML mapping describing a ``what``."""
    data = read_yaml(path, what)
    if not isinstance(data, dict):
        raise InputError(str(path), f"a {what} must be a YAML mapping")
    return data


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
