"""User-facing errors: raised for bad input or configuration, printed without a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class EmotionError(Exception):
    """An error the user can fix; its message names the file or key and what to do."""


class ConfigError(EmotionError):
    """A missing, misspelt or ill-typed setting in a params file."""


class DataError(EmotionError):
    """Bad or unexpected input data (corrupt image, unknown class folder, bad CSV row...)."""


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Inside: an :class:`EmotionError` (bad input, a missing step) becomes its message on
    stderr and exit status 2, with no traceback; other exceptions are bugs and propagate."""
    try:
        yield
    except EmotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
