"""Reading one TOML config table into a frozen settings dataclass, the same way for every app.

Each field's type hint says what the table may hold: ``int``, ``float`` (an integer is taken),
``bool``, ``str``, ``Path`` (relative to the config file's folder), a ``StrEnum`` (by value), a
``tuple[str, ...]`` or ``tuple[Path, ...]``, each optionally ``| None``. Unknown keys and values
of the wrong type are refused with the key's name — a misspelt key must never fall back to a
default silently. Range checks stay in the dataclass's ``__post_init__``.

Environment overrides ``<PREFIX><SECTION>__<KEY>=value`` (or ``__<TABLE>__<KEY>`` for a nested
table) are read as TOML scalars, else as text, and applied over the file's tables.
"""

import dataclasses
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

Settings = TypeVar("Settings")
ErrorFactory = Callable[[str], Exception]


def parse_environment_value(text: str) -> object:
    """A TOML scalar (``8080``, ``true``, ``"x"``, ``["a"]``) where the text is one, else the text."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def read_tables(
    text: str, environ: Mapping[str, str], *, prefix: str, sections: tuple[str, ...], error: ErrorFactory
) -> dict[str, Any]:
    """The tables of a config file's text, only known sections, with environment overrides applied."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise error(f"not valid TOML: {err}") from err
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(sections)}")
    return apply_environment(raw, environ, prefix=prefix, sections=sections, error=error)


def apply_environment(
    table: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    prefix: str,
    sections: tuple[str, ...],
    error: ErrorFactory,
) -> dict[str, Any]:
    """The config table with ``<prefix><SECTION>__<KEY>`` variables applied over it."""
    merged: dict[str, Any] = {key: dict(value) if isinstance(value, dict) else value for key, value in table.items()}
    for name, text in environ.items():
        if not name.startswith(prefix):
            continue
        section, *path = name[len(prefix) :].lower().split("__")
        if section not in sections or not path or not all(path):
            raise error(
                f"environment variable {name}: expected {prefix}<SECTION>__<KEY> (or __<TABLE>__<KEY>) "
                f"with SECTION one of {', '.join(sections)}"
            )
        target = merged.setdefault(section, {})
        for table_name in path[:-1]:
            inner = target.get(table_name)
            target[table_name] = inner = dict(inner) if isinstance(inner, dict) else {}
            target = inner
        target[path[-1]] = parse_environment_value(text)
    return merged


def settings_from_table(  # noqa: PLR0913 - keyword-only: each says where the table came from
    cls: type[Settings],
    table: object,
    *,
    name: str,
    base_dir: Path,
    error: ErrorFactory,
    nested: Mapping[str, Callable[[object], object]] | None = None,
) -> Settings:
    """Build the dataclass ``cls`` from a TOML table named ``name`` (used in messages).

    ``nested`` maps a field name to a function that builds that field from its sub-table.
    """
    if not isinstance(table, Mapping):
        raise error(f"[{name}] must be a table, not {table!r}")
    hints = typing.get_type_hints(cls)
    known = {item.name for item in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise error(f"[{name}] unknown key {key!r}; known: {', '.join(sorted(known))}")
        if nested and key in nested:
            values[key] = nested[key](value)
        else:
            values[key] = _coerce(hints[key], value, f"[{name}] {key}", base_dir, error)
    try:
        return cls(**values)
    except TypeError as err:  # a required key missing
        raise error(f"[{name}] {err}") from err


def _scalar(kind: object, value: object, base_dir: Path) -> object:
    """The value as ``kind``, or :data:`_WRONG` when it is not one."""
    if kind is bool:
        return value if isinstance(value, bool) else _WRONG
    if kind is int:
        return value if type(value) is int else _WRONG
    if kind is float:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else _WRONG
    if kind is str:
        return value if isinstance(value, str) else _WRONG
    if kind is Path:
        return (base_dir / value).resolve() if isinstance(value, str) and value else _WRONG
    return _WRONG


_WRONG = object()


def _coerce(hint: object, value: object, label: str, base_dir: Path, error: ErrorFactory) -> object:
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    kinds = tuple(kind for kind in kinds if kind is not type(None))
    kind = kinds[0] if len(kinds) == 1 else None
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        if isinstance(value, str) and value in {member.value for member in kind}:
            return kind(value)
        choices = ", ".join(repr(member.value) for member in kind)
        raise error(f"{label} must be one of {choices}, not {value!r}")
    if typing.get_origin(kind) is tuple and isinstance(value, list):
        item = typing.get_args(kind)[0]
        return tuple(_coerce(item, element, label, base_dir, error) for element in value)
    coerced = _scalar(kind, value, base_dir)
    if coerced is _WRONG:
        raise error(f"{label} must be {_describe(kind)}, not {value!r}")
    return coerced


def _describe(kind: object) -> str:
    if kind is Path:
        return "a file path"
    if typing.get_origin(kind) is tuple:
        return f"a list of {_describe(typing.get_args(kind)[0])}s"
    names: dict[object, str] = {bool: "true or false", int: "an integer", float: "a number", str: "text"}
    return names.get(kind, str(kind))
