"""User-facing errors: raised for bad input or configuration, printed without a traceback."""


class EmotionError(Exception):
    """An error the user can fix; its message names the file or key and what to do."""


class ConfigError(EmotionError):
    """A missing, misspelt or ill-typed setting in a params file."""


class DataError(EmotionError):
    """Bad or unexpected input data (corrupt image, unknown class folder, bad CSV row...)."""
