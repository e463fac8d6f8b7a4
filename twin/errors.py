"""Input errors shared by every package: each one names the file, the field and the reason."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input, rejected before anything is written.

    The message always reads ``<source>[: <field>][ (feature <id>)]: <reason>`` so that a
    person can find the offending file, layer/field and record without a traceback.
    """

    def __init__(
        self,
        source: str,
        reason: str,
        *,
        field: str | None = None,
        feature_id: object | None = None,
    ) -> None:
        self.source = str(source)
        self.field = field
        self.feature_id = feature_id
        self.reason = reason
        where = self.source
        if field:
            where += f": {field}"
        if feature_id is not None:
            where += f" (feature {feature_id})"
        super().__init__(f"{where}: {reason}")


class TwinValidationError(InputError):
    """A twin (terrain, layer or network) failed validation."""
