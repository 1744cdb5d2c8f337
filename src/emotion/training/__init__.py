"""Stages ``train`` and ``evaluate``: timm transfer learning on the packed splits, test metrics."""
