"""The train stage's live log: dvclive files written as each epoch ends, for ``dvc exp show`` and
``dvc plots`` to read while training runs.

Layout under the log folder (``plots/train/live`` in the pipeline; dvc.yaml declares the files,
so dvclive writes no ``dvc.yaml`` and saves no experiment of its own):

- ``metrics.json``: the latest epoch's quality metrics and timings (DVC metrics, ``step`` = epoch);
- ``plots/metrics/<series>.tsv``: one row per epoch for every series of the history rows (DVC
  plots, ``x: step``): ``train/*``, ``val/*``, ``val_ema/*``, ``gap/*``, ``lr/<param group>``,
  ``weight_norm/<block>``, ``grad_norm/<block>`` and ``timing/*``;
- ``plots/images/weight_distribution.png``: one figure, redrawn as each epoch ends, of every
  block's weight distribution over the epochs so far.

The diagnostics (``lr``, ``weight_norm``, ``grad_norm``) are plots only: they are left out of
``metrics.json`` so ``dvc exp show`` and metric diffs list results, not 20 norms. A resumed run
opens a fresh log and replays the stored rows first (:meth:`LiveLog.replay`), so its files equal
an uninterrupted run's, timings aside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dvclive import Live
from scmrepo.exceptions import SCMError

from emotion.training.diagnostics import weight_distribution_figure

WEIGHT_FIGURE = "weight_distribution.png"  #: under ``plots/images``
NOT_SERIES = ("epoch", "phase")  #: row keys that are not logged as series
PLOTS_ONLY = ("lr", "weight_norm", "grad_norm")  #: series kept out of metrics.json


class _Live(Live):
    """``Live`` that also starts in a git repo without commits, where dvclive 3.49 reads HEAD
    before checking for commits and fails; the stage uses none of its git/DVC integration."""

    def _init_dvc(self) -> None:
        try:
            super()._init_dvc()
        except SCMError:
            self._dvc_repo, self._dvc_file = None, "dvc.yaml"


class LiveLog:
    """A dvclive ``Live`` run fed one history row (+ timing row, histograms) per epoch."""

    def __init__(self, directory: Path) -> None:
        self.live = _Live(str(directory), save_dvc_exp=False, dvcyaml=None, report=None)
        self.histograms: list[Mapping[str, Any]] = []

    @classmethod
    def replay(
        cls,
        directory: Path,
        history: Sequence[Mapping[str, Any]],
        timing: Sequence[Mapping[str, Any]],
        histograms: Sequence[Mapping[str, Any]],
    ) -> LiveLog:
        """A fresh log (DVC deleted the stage's outputs) holding the epochs already run."""
        log = cls(directory)
        for i, (row, times, hist) in enumerate(zip(history, timing, histograms, strict=True)):
            log.epoch(row, times, hist, draw=i == len(history) - 1)
        return log

    def epoch(
        self,
        row: Mapping[str, Any],
        timing: Mapping[str, Any],
        histograms: Mapping[str, Any],
        *,
        draw: bool = True,
    ) -> None:
        """Log one finished epoch and write the files (one ``next_step`` per epoch); ``draw``:
        redraw the weight figure with this epoch (off while replaying all but the last)."""
        epoch = int(row["epoch"])
        self.live.step = epoch
        for name, value in {**row, **timing}.items():
            if name not in NOT_SERIES and value is not None:
                self.live.log_metric(name, value)
        if histograms:
            self.histograms.append(histograms)
        if draw and self.histograms:
            self.live.log_image(WEIGHT_FIGURE, weight_distribution_figure(self.histograms))
        for key in PLOTS_ONLY:
            self.live.summary.pop(key, None)
        self.live.next_step()

    def close(self) -> None:
        self.live.end()
