"""``emotion release``: a finished pipeline run as a self-contained, verifiable model folder."""
