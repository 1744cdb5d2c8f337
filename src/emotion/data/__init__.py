"""Stages ``ingest`` and ``balance``: verify a raw dataset, then split and balance it."""
