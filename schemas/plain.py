"""Raw events checked as the models check them, read into plain dicts where that is the
same check: identity's intake, which passes each event on as the bytes it came in.

:data:`RAW_EVENT_READER` validates a raw event against a core schema derived from
``RAW_EVENT_ADAPTER``'s: every event type whose schema runs no Python code of its own
becomes a typed dict with the same fields, constraints, extra-key rules and settings (no
model instances: ~2.8 µs instead of ~4.4 for a page view, the commonest event). Types
whose schema has a Python validator (an order's line amounts, a profile update that
changes nothing) keep their model, read exactly as ``RAW_EVENT_ADAPTER`` reads them.
The envelope's two Python validators are mirrored: an event must name at least one
identifier (checked on the dict; the model's error is raised), and a context's ``null``
keys are only kept (dropping them matters when an event is encoded again; identity never
does).

A message either reader refuses raises the model adapter's own ``ValidationError``, so
the dead-letter reason is the same. tests/unit/schemas/test_plain.py holds the two
readers to the same verdict on mutated events of every type.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import SchemaValidator, ValidationError

from schemas.events import RAW_EVENT_ADAPTER, RawEvent

PlainEvent = dict[str, Any]
"""An event read by :data:`RAW_EVENT_READER` into a dict: fields as sent (absent ones
absent, not defaulted), datetimes and the ``source`` enum as the model has them."""

_MIRRORED = {"Identifiers._at_least_one", "EventContext._null_is_absent"}


class _Untranslatable(Exception):
    """A schema that runs Python code of its own: its event type keeps its model."""


def _typed_dict(schema: Any) -> Any:
    """``schema`` with its models as typed dicts (raises _Untranslatable)."""
    if isinstance(schema, list):
        return [_typed_dict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind == "function-after" and schema["function"]["function"].__qualname__ in _MIRRORED:
        return _typed_dict(schema["schema"])
    if (isinstance(kind, str) and kind.startswith("function")) or kind == "definition-ref":
        raise _Untranslatable(kind)
    if kind == "model":
        return _model(schema)
    return {key: _typed_dict(value) for key, value in schema.items() if key != "ref"}


def _model(schema: dict[str, Any]) -> dict[str, Any]:
    fields_schema = schema["schema"]
    if schema.get("custom_init") or schema.get("root_model") or schema.get("post_init"):
        raise _Untranslatable(schema["cls"].__name__)
    if fields_schema.get("computed_fields") or fields_schema.get("extras_schema"):
        raise _Untranslatable(schema["cls"].__name__)
    fields = {}
    for name, field in fields_schema["fields"].items():
        if field.get("validation_alias") or field.get("serialization_exclude"):
            raise _Untranslatable(f"{schema['cls'].__name__}.{name}")
        inner = field["schema"]
        required = inner.get("type") != "default"
        if not required:  # absent stays absent (a dict does not need the default)
            inner = inner["schema"]
        fields[name] = {
            "type": "typed-dict-field",
            "schema": _typed_dict(inner),
            "required": required,
        }
    config = schema.get("config", {})  # the model's own settings hold for its dict too
    extra = config.get("extra_fields_behavior", "ignore")
    return {"type": "typed-dict", "fields": fields, "extra_behavior": extra, "config": config}


def _plain_schema() -> tuple[dict[str, Any], frozenset[str]]:
    """The raw event union with every translatable choice as a typed dict."""
    union = RAW_EVENT_ADAPTER.core_schema
    assert union["type"] == "tagged-union", union["type"]
    choices, plain = {}, set()
    for name, choice in union["choices"].items():
        try:
            choices[name] = _typed_dict(choice)
            plain.add(name)
        except _Untranslatable:
            choices[name] = choice
    return {**union, "choices": choices}, frozenset(plain)


class RawEventReader:
    """``validate_json(raw)``: a :data:`PlainEvent` or a model (as above), else the
    model adapter's ``ValidationError``."""

    def __init__(self) -> None:
        schema, self.plain_types = _plain_schema()
        self._plain = SchemaValidator(schema)

    def validate_json(self, raw: bytes | str) -> PlainEvent | RawEvent:
        try:
            event = self._plain.validate_json(raw)
        except ValidationError:
            return RAW_EVENT_ADAPTER.validate_json(raw)  # raises its own error
        if type(event) is dict and not any(event["identifiers"].values()):
            return RAW_EVENT_ADAPTER.validate_json(raw)  # "at least one identifier"
        return event  # type: ignore[no-any-return]


RAW_EVENT_READER = RawEventReader()
