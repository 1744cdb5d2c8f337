"""The ``params.yaml`` schema, one module per section (the whole file: :mod:`.file`)."""
