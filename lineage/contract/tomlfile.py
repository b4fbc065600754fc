"""Reading the TOML files people write (policies, the OpenLineage dataset mapping): one line per failure.

Every failure is a ``ConfigurationError`` naming the setting and the file (``policy: p.toml: not
valid TOML: ...``); ``kind`` says what a value is in the file's words, so a message names the type
that is wrong without repeating the value.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from lineage.errors import ConfigurationError

__all__ = ["kind", "read_toml"]


def read_toml(path: Path, setting: str) -> dict[str, Any]:
    """The document in ``path``, or ``ConfigurationError(setting, ...)`` naming the file and the problem."""
    where = path.name
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigurationError(setting, f"{where}: is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigurationError(setting, f"{where}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(setting, f"{where}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigurationError(setting, f"{where}: not valid TOML: nested too deeply") from None


def kind(value: object) -> str:
    """What a TOML value is, in the file's words (never the value itself beyond a number)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string" if value.strip() else "an empty string"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"
