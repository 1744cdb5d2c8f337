"""``emotion predict``: every face in images, folders and videos, as JSON lines or CSV."""

#: output formats of ``emotion predict``
FORMATS = ("jsonl", "csv")
