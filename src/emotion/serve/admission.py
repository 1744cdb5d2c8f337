"""Admission control: a bounded number of predictions in flight per worker process.

A request is admitted only while fewer than ``max_in_flight`` are in flight; the rest are
refused at once with 503 and ``Retry-After`` (a load balancer retries another worker or later)
instead of queueing without bound. Memory is then bounded by the slots: each admitted request
holds at most its upload, one bounded frame (:mod:`emotion.serve.images`) and one batch of model
inputs, and at most ``large_image_slots`` full-size decodes run at once (docs/serving.md gives
the measured memory).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from emotion.core.errors import EmotionError

#: seconds a refused client is asked to wait (one prediction takes milliseconds to a second)
RETRY_AFTER = 1


class ServerBusyError(EmotionError):
    """Every prediction slot is taken: answered 503 with ``Retry-After``."""


class Admission:
    """Counts predictions in flight (on the event loop, so no lock)."""

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``max_in_flight`` slots, or raise ``ServerBusyError`` at once."""
        if self.in_flight >= self.max_in_flight:
            raise ServerBusyError(
                f"the server is at its limit of {self.max_in_flight} predictions in flight; "
                f"retry in {RETRY_AFTER} s"
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
