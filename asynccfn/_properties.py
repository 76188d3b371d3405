"""Typed properties: CloudFormation's strings converted to the type a resource declares.

CloudFormation sends every scalar of ResourceProperties as a string (``"true"``, ``"10"``,
``"1.5"``), and lists and objects as JSON. ``Resource("Custom::X", properties=Props)``
declares a dataclass, a ``msgspec.Struct`` or a pydantic model, and each request's
properties are converted to it in two passes:

1. a walk over the declared type that applies CloudFormation's encoding exactly and names
   every field that does not fit: a bool is ``"true"`` or ``"false"`` in any case and nothing
   else (not ``"1"``, ``"yes"`` nor ``"on"``, which the libraries' lax modes accept); an int
   is an integer literal (``"1.5"`` and ``"1e3"`` are refused, never truncated); a float is a
   finite decimal number; an enum or ``Literal`` is one of its values. Lists, objects, nested
   records, optional fields and unions are followed; other types (datetime, UUID, Decimal,
   ...) are left to the library.
2. construction by the type's library, from values that already have their Python types:
   ``msgspec.convert`` for dataclasses and Structs (it checks ``msgspec.Meta`` constraints,
   applies defaults and renames), pydantic's own validation for its models.

msgspec (or pydantic) is imported here, and this module only when a resource declares
``properties=``, so an untyped function's cold start pays for neither.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import json
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

from ._errors import ConfigurationError
from ._fields import REPLACES_METADATA, _ReplacesMarker
from ._protocol import Request, RequestType
from ._redact import message_of

__all__ = ["PropertiesSchema", "schema_for"]

_MAX_REASON = 1024  # characters: well inside the response body's 4 KiB, beside the ids
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLS = {"true": True, "false": False}
_SEQUENCES = (
    list,
    tuple,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Set,
    collections.abc.MutableSet,
    collections.abc.Collection,
    collections.abc.Iterable,
)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Field:
    name: str
    """The attribute's name: what ``request.changed`` holds."""
    key: str
    """The key CloudFormation's mapping has it under (a msgspec rename, a pydantic alias)."""
    type: Any
    required: bool
    replaces: bool


def schema_for(cls: object) -> PropertiesSchema:
    """The schema of a resource's ``properties=`` type.

    Raises:
        ConfigurationError: ``cls`` is not a dataclass, a ``msgspec.Struct`` or a pydantic
            model, or the library it needs is not installed.
    """
    return PropertiesSchema(cls)


class PropertiesSchema:
    """Converts a request's raw properties to one declared type (see the module docstring)."""

    __slots__ = ("_convert", "_fields", "_pydantic", "cls", "fields")

    def __init__(self, cls: object) -> None:
        self._fields: dict[Any, tuple[_Field, ...] | None] = {}
        self._pydantic = _pydantic_base() if _is_pydantic_model(cls) else None
        if self._pydantic is None:
            if not (_is_dataclass_type(cls) or _is_struct(cls)):
                raise ConfigurationError(
                    "Resource(properties=...) takes a dataclass, a msgspec.Struct or a pydantic "
                    f"model class, got {cls!r}"
                )
            try:
                import msgspec
                import msgspec.inspect
            except ImportError:
                raise ConfigurationError(
                    f"Resource(properties={getattr(cls, '__qualname__', cls)}) needs msgspec: "
                    "pip install 'asynccfn[typed]'"
                ) from None
            self._convert: Callable[..., Any] = msgspec.convert
            # A field type msgspec cannot convert is a mistake of the definition.
            try:
                unsupported = _unsupported(msgspec.inspect.type_info(cls), set())
            except (NameError, TypeError) as exc:  # an annotation that does not resolve
                raise ConfigurationError(
                    f"the annotations of {getattr(cls, '__qualname__', cls)} do not resolve: {exc}"
                ) from None
            if unsupported is not None:
                raise ConfigurationError(
                    f"Resource(properties={cls.__qualname__}): a field's type "  # type: ignore[attr-defined]
                    f"{unsupported.__qualname__} is not one msgspec converts"
                )
        assert isinstance(cls, type)
        self.cls = cls
        try:
            fields = self._record_fields(cls)
        except (NameError, TypeError) as exc:  # an annotation that does not resolve
            raise ConfigurationError(
                f"the annotations of {cls.__qualname__} do not resolve: {exc}"
            ) from None
        assert fields is not None
        self.fields = fields

    def __repr__(self) -> str:
        return f"PropertiesSchema({self.cls.__qualname__})"

    # -- the request's typed view -----------------------------------------------------------

    def view(self, request: Request) -> Request[Any] | str:
        """``request`` with its properties converted, or the FAILED reason when the new
        properties do not convert (old ones are converted best-effort: None when they do
        not). A Delete always gets a request: with the raw mapping as ``properties`` and the
        reason in ``property_errors`` when they do not convert, so a stack can always delete.
        """
        new, errors = self.convert(request.raw_properties)
        if errors:
            reason = self.reason(errors)
            if request.request_type is RequestType.DELETE:
                return dataclasses.replace(request, property_errors=reason)
            return reason
        old = None
        changed: frozenset[str] = frozenset()
        replacing = False
        if request.request_type is RequestType.UPDATE and request.raw_old_properties is not None:
            old, old_errors = self.convert(request.raw_old_properties)
            if old_errors:
                old = None
            changed = self.changed(new, old, request.raw_properties, request.raw_old_properties)
            replacing = any(f.replaces for f in self.fields if f.name in changed)
        return dataclasses.replace(
            request, properties=new, old_properties=old, changed=changed, replacing=replacing
        )

    def convert(self, raw: Mapping[str, Any]) -> tuple[Any, list[str]]:
        """(the typed object, []) or (None, a message per field that does not convert)."""
        errors: list[str] = []
        cleaned = self._record(self.cls, self.fields, raw, "", errors, top=True)
        if errors:
            return None, errors
        return self._build(cleaned)

    def changed(
        self,
        new: Any,
        old: Any,
        raw_new: Mapping[str, Any],
        raw_old: Mapping[str, Any],
    ) -> frozenset[str]:
        """The names of the fields whose values differ (compared raw when ``old`` is None)."""
        if old is None:
            return frozenset(
                f.name
                for f in self.fields
                if raw_new.get(f.key, _ABSENT) != raw_old.get(f.key, _ABSENT)
            )
        return frozenset(
            f.name for f in self.fields if getattr(new, f.name) != getattr(old, f.name)
        )

    def reason(self, errors: list[str]) -> str:
        """The FAILED reason naming each bad field, within the Reason budget."""
        head = f"the properties do not convert to {self.cls.__qualname__}: "
        shown: list[str] = []
        size = len(head)
        for index, error in enumerate(errors):
            more = len(errors) - index - 1
            tail = f"; and {more} more" if more else ""
            if size + len(error) + 2 + len(tail) > _MAX_REASON:
                return head + "; ".join(shown) + f"; and {len(errors) - index} more"
            shown.append(error)
            size += len(error) + 2
        return head + "; ".join(shown)

    # -- construction by the library ---------------------------------------------------------

    def _build(self, cleaned: Any) -> tuple[Any, list[str]]:
        """The library's construction of the type; the type's own code (``__post_init__``, a
        validator) raising anything but a validation error is a conversion error too, so a
        Create or Update answers FAILED with it and a Delete still reaches its handler."""
        try:
            return self._construct(cleaned)
        except Exception as exc:
            return None, [f"{self.cls.__qualname__} raised {type(exc).__name__}: {message_of(exc)}"]

    def _construct(self, cleaned: Any) -> tuple[Any, list[str]]:
        if self._pydantic is not None:
            from pydantic import ValidationError

            try:
                return self.cls.model_validate(cleaned), []  # type: ignore[attr-defined]
            except ValidationError as exc:
                return None, [
                    f"{_pydantic_path(error['loc'])}: {error['msg']}" for error in exc.errors()
                ]
        import msgspec

        try:
            # strict: the walk already gave every scalar its type, so the library's lax rules
            # (which take "1" for true) never apply.
            return self._convert(cleaned, self.cls, strict=True), []
        except msgspec.ValidationError as exc:
            return None, [_msgspec_message(str(exc))]

    # -- the walk ---------------------------------------------------------------------------

    def _record_fields(self, tp: Any) -> tuple[_Field, ...] | None:
        if tp not in self._fields:
            self._fields[tp] = _record_fields(tp, self._pydantic)
        return self._fields[tp]

    def _clean(self, tp: Any, value: Any, path: str, errors: list[str]) -> Any:
        """``value`` with CloudFormation's strings turned into ``tp``'s scalars; each value
        that does not fit adds a message to ``errors``."""
        tp = _unannotated(tp)
        if tp is Any or tp is object:
            return value
        origin = typing.get_origin(tp)
        if origin is Union or origin is types.UnionType:
            return self._union(typing.get_args(tp), value, path, errors)
        if origin is Literal:
            return _literal(typing.get_args(tp), value, path, errors)
        if tp is type(None):
            return value if value is None else _fail(errors, path, "null", value)
        if tp is bool:
            return _bool(value, path, errors)
        if tp is int:
            return _int(value, path, errors)
        if tp is float:
            return _float(value, path, errors)
        if tp is str:
            return value if isinstance(value, str) else _fail(errors, path, "a string", value)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum(tp, value, path, errors)
        if tp in _SEQUENCES or origin in _SEQUENCES:
            return self._sequence(tp, origin, value, path, errors)
        if tp in _MAPPINGS or origin in _MAPPINGS:
            if not isinstance(value, Mapping):
                return _fail(errors, path, "an object", value)
            args = typing.get_args(tp)
            item = args[1] if len(args) == 2 else Any
            return {k: self._clean(item, v, _key(path, str(k)), errors) for k, v in value.items()}
        fields = self._record_fields(tp)
        if fields is not None:
            if not isinstance(value, Mapping):
                return _fail(errors, path, "an object", value)
            return self._record(tp, fields, value, path, errors, top=False)
        return value  # datetime, UUID, Decimal, ...: the library parses the string

    def _record(
        self,
        tp: Any,
        fields: tuple[_Field, ...],
        value: Mapping[str, Any],
        path: str,
        errors: list[str],
        *,
        top: bool,
    ) -> dict[str, Any]:
        keys = {f.key for f in fields}
        # Unknown keys go on to the library (whose forbid_unknown_fields may refuse them),
        # except ServiceToken: CloudFormation adds it to every resource's properties.
        cleaned = {k: v for k, v in value.items() if k in keys or not (top and k == "ServiceToken")}
        for f in fields:
            where = _key(path, f.key)
            if f.key in value:
                cleaned[f.key] = self._clean(f.type, value[f.key], where, errors)
            elif f.required:
                errors.append(f"{where}: missing (required)")
        return cleaned

    def _sequence(self, tp: Any, origin: Any, value: Any, path: str, errors: list[str]) -> Any:
        if not isinstance(value, list | tuple):
            return _fail(errors, path, "a list", value)
        args = typing.get_args(tp)
        if (origin or tp) is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                return _fail(errors, path, f"a list of {len(args)}", value)
            return [
                self._clean(a, v, f"{path}[{i}]", errors)
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            ]
        item = args[0] if args else Any
        return [self._clean(item, v, f"{path}[{i}]", errors) for i, v in enumerate(value)]

    def _union(self, members: tuple[Any, ...], value: Any, path: str, errors: list[str]) -> Any:
        if value is None and type(None) in members:
            return None
        options = [m for m in members if m is not type(None)]
        if len(options) == 1:
            return self._clean(options[0], value, path, errors)
        # CloudFormation sends "5" for 5: the members that are not plain strings go first.
        for member in sorted(options, key=lambda m: _unannotated(m) is str):
            trial: list[str] = []
            cleaned = self._clean(member, value, path, trial)
            if not trial:
                return cleaned
        names = " or ".join(_describe(m) for m in options)
        return _fail(errors, path, names, value)


# --- scalars -------------------------------------------------------------------------------


def _bool(value: Any, path: str, errors: list[str]) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOLS:
        return _BOOLS[value.lower()]
    return _fail(errors, path, "true or false", value)


def _int(value: Any, path: str, errors: list[str]) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) <= 64 and _INTEGER.fullmatch(value):
        return int(value)
    return _fail(errors, path, "an integer", value)


def _float(value: Any, path: str, errors: list[str]) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str) and len(value) <= 64 and _NUMBER.fullmatch(value):
        number = float(value)
        if math.isfinite(number):
            return number
    return _fail(errors, path, "a number", value)


def _enum(tp: type[enum.Enum], value: Any, path: str, errors: list[str]) -> Any:
    for member in tp:
        if _same_scalar(member.value, value):
            return member.value
    return _fail(errors, path, _describe(tp), value)


def _literal(options: tuple[Any, ...], value: Any, path: str, errors: list[str]) -> Any:
    for option in options:
        if _same_scalar(option, value):
            return option
    return _fail(errors, path, "one of " + ", ".join(_json(o) for o in options), value)


def _same_scalar(declared: Any, value: Any) -> bool:
    """Whether ``value`` is ``declared`` as itself or as CloudFormation's string of it."""
    if isinstance(declared, bool):
        if isinstance(value, str):
            return _BOOLS.get(value.lower()) is declared
        return value is declared
    if isinstance(declared, int | float) and isinstance(value, str):
        pattern = _INTEGER if isinstance(declared, int) else _NUMBER
        return bool(pattern.fullmatch(value)) and float(value) == declared
    return type(value) is type(declared) and value == declared


def _fail(errors: list[str], path: str, expected: str, value: Any) -> None:
    errors.append(f"{path}: expected {expected}, got {_got(value)}")


def _got(value: Any) -> str:
    if isinstance(value, str):
        return _json(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return _json(value)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return type(value).__name__


def _describe(tp: Any) -> str:
    """What ``tp`` expects, in the words of a reason."""
    tp = _unannotated(tp)
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if tp in names:
        return names[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(_json(m.value) for m in tp)
    origin = typing.get_origin(tp)
    if tp in _SEQUENCES or origin in _SEQUENCES:
        return "a list"
    if origin is Literal:
        return "one of " + ", ".join(_json(o) for o in typing.get_args(tp))
    return (
        "an object" if tp in _MAPPINGS or origin in _MAPPINGS else getattr(tp, "__name__", str(tp))
    )


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- the record types ----------------------------------------------------------------------


_ABSENT = object()


def _unannotated(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _marked(tp: Any) -> bool:
    """Whether ``tp`` is ``Annotated[..., asynccfn.Replaces]``."""
    return typing.get_origin(tp) is typing.Annotated and any(
        isinstance(extra, _ReplacesMarker) for extra in tp.__metadata__
    )


def _is_dataclass_type(cls: object) -> bool:
    return isinstance(cls, type) and dataclasses.is_dataclass(cls)


def _is_struct(cls: object) -> bool:
    msgspec = sys.modules.get("msgspec")
    return msgspec is not None and isinstance(cls, type) and issubclass(cls, msgspec.Struct)


def _pydantic_base() -> Any:
    """pydantic's BaseModel when the user's code imported pydantic (never imported here
    first: a model class can only exist once it was)."""
    pydantic = sys.modules.get("pydantic")
    return None if pydantic is None else pydantic.BaseModel


def _is_pydantic_model(cls: object) -> bool:
    base = _pydantic_base()
    return base is not None and isinstance(cls, type) and issubclass(cls, base)


def _record_fields(tp: Any, pydantic_base: Any) -> tuple[_Field, ...] | None:
    """The fields of a record type (dataclass, Struct, pydantic model), or None for a type
    that is not one."""
    if not isinstance(tp, type):
        return None
    if _is_struct(tp):
        import msgspec

        return tuple(
            _Field(
                name=f.name,
                key=f.encode_name,
                type=f.type,
                required=f.required,
                replaces=_marked(f.type),
            )
            for f in msgspec.structs.fields(tp)
        )
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        return tuple(
            _Field(
                name=f.name,
                key=f.name,
                type=hints.get(f.name, Any),
                required=f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING,
                replaces=bool(f.metadata.get(REPLACES_METADATA)) or _marked(hints.get(f.name)),
            )
            for f in dataclasses.fields(tp)
            if f.init
        )
    if pydantic_base is not None and _is_pydantic_model(tp):
        found = []
        for name, info in tp.model_fields.items():  # type: ignore[attr-defined]
            alias = info.validation_alias if isinstance(info.validation_alias, str) else None
            found.append(
                _Field(
                    name=name,
                    key=alias or info.alias or name,
                    type=info.annotation,
                    required=info.is_required(),
                    replaces=any(isinstance(m, _ReplacesMarker) for m in info.metadata),
                )
            )
        return tuple(found)
    return None


def _unsupported(node: Any, seen: set[int]) -> Any:
    """The first class in a msgspec type tree that msgspec cannot convert, or None (the
    tree's nodes are Structs themselves; recursive types meet a node twice)."""
    import msgspec
    import msgspec.inspect

    if id(node) in seen:
        return None
    seen.add(id(node))
    if isinstance(node, msgspec.inspect.CustomType):
        return node.cls
    children: list[Any] = []
    if isinstance(node, msgspec.Struct):
        for name in node.__struct_fields__:
            value = getattr(node, name)
            children.extend(value if isinstance(value, tuple) else [value])
    for child in children:
        if isinstance(child, msgspec.Struct):
            found = _unsupported(child, seen)
            if found is not None:
                return found
    return None


def _pydantic_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _key(path, part)
    return path


def _msgspec_message(message: str) -> str:
    """msgspec's "Expected `int` >= 0, got `-1` - at `$.Retries`" as
    "Retries: expected `int` >= 0, got `-1`"."""
    text, sep, where = message.rpartition(" - at `")
    if not sep:
        text = message
    path = where.rstrip("`").removeprefix("$").removeprefix(".") if sep else ""
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", text)
    if unknown:
        return f"{_key(path, unknown[1])}: not a property of this resource"
    return f"{path or '$'}: {text[:1].lower()}{text[1:]}"
