"""Shared plumbing for the thin scripts in ``stages/``: logging, errors, worker count."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from emotion.core.errors import EmotionError, exit_on_user_error

log = logging.getLogger("emotion")


def worker_count() -> int:
    """Worker processes for CPU-bound loops: ``EMOTION_WORKERS`` or all cores.

    Deliberately not a DVC param: it changes speed, never outputs.
    """
    value = os.environ.get("EMOTION_WORKERS", "")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise EmotionError(f"EMOTION_WORKERS must be an integer, got {value!r}") from None
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``: log to stderr, turn user errors into a clean message + exit 2."""
    logging.basicConfig(
        level=os.environ.get("EMOTION_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    with exit_on_user_error():
        main()
