"""Validation primitives shared by the configuration modules: one error type whose message
names the key and the fix, and checkers for the shapes settings take."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PREFIX = "backstop:"
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$")
SECRET_NAME = re.compile(r"^[\w/+=.@-]{1,512}$")


class ConfigurationError(ValueError):
    """A configuration value is wrong; the message names the key and the fix."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        super().__init__(f"{PREFIX}{key}: {problem}; {fix}")
        self.key = key


def is_secret_id(value: Any) -> bool:
    return isinstance(value, str) and bool(
        SECRET_ARN.match(value) or (not value.startswith("arn:") and SECRET_NAME.match(value)))


def int_setting(raw: Mapping[str, Any], name: str, default: int, low: int, high: int,
         key_prefix: str = "", note: str = "") -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{key_prefix}{name}", f"{value!r} is out of range",
                                 f"use a whole number from {low} to {high}{note}")
    return value


def choice_setting(raw: Mapping[str, Any], name: str, choices: tuple[str, ...],
                   default: str) -> str:
    value = raw.get(name, default)
    if value not in choices:
        raise ConfigurationError(name, f"{value!r} is not allowed", f"use one of {choices}")
    return str(value)


def str_list_setting(raw: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = raw.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(name, f"{value!r} is not a list of strings", '["..."]')
    return tuple(value)


def optional_str_setting(raw: Mapping[str, Any], name: str, pattern: str, what: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise ConfigurationError(name, f"{value!r} is not {what}", f"give {what} or null")
    return value
