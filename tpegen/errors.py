"""Errors tpegen reports to users, and the argument checks that raise them.

Every user-facing failure is a :class:`TpegenError`; the CLI prints its message as one line on
stderr and exits non-zero. :class:`ConfigError` names the offending field and the allowed values so
that a bad YAML file, a bad shape or a bad bit-width can be fixed without reading the source.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from typing import Any

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to about 80 characters, so that no error message echoes a huge value."""
    text = _SHORT.repr(value)
    return text if len(text) <= 100 else text[:96] + "...'"


class TpegenError(Exception):
    """Base class of every error tpegen reports to a user (one line, no traceback)."""


class ConfigError(TpegenError, ValueError):
    """A configuration field (or CLI argument) holds a value outside its allowed set.

    ``field`` is the dotted path of the field (``array.rows``), ``allowed`` a human-readable
    description of the allowed values (``an integer in 1..256``), ``got`` the rejected value.
    """

    def __init__(self, field: str, allowed: str, got: Any = None, *, where: str | None = None):
        self.field = field
        self.allowed = allowed
        self.got = got
        prefix = f"{where}: " if where else ""
        got_text = "" if got is None else f", got {short_repr(got)}"
        super().__init__(f"{prefix}{field}: must be {allowed}{got_text}")


def check_int(field: str, value: Any, lo: int, hi: int) -> int:
    """Return ``value`` if it is an int (not a bool) in ``lo..hi``; raise :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(field, f"an integer in {lo}..{hi}", value)
    return value


def check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(field, "true or false", value)
    return value


def check_choice(field: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        raise ConfigError(field, "one of " + ", ".join(repr(c) for c in choices), value)
    return value
