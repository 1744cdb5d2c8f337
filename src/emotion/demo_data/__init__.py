"""Procedurally generated demo face dataset (offline stand-in for FER-style data)."""
