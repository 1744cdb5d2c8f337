"""Infrastructure with no knowledge of faces or models, on which every other package stands.

How params are loaded and validated, how files are written and read between stages, how a stage
reports errors, results and progress, and where it keeps state that DVC does not track.
"""
