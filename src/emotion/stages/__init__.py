"""The pipeline's stages, one module per DVC stage, named for it.

``stages/<name>.py`` (the DVC command) parses paths and loads the typed params sections, then
calls ``run_<name>`` here, which reads the stage's inputs, calls the library packages and writes
its outputs. Nothing below this package imports it.
"""
