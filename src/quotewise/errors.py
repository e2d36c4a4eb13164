"""Errors a user can act on: each names what was wrong and where."""


class QuotewiseError(Exception):
    """Base class for every error Quotewise raises on purpose."""


class DataError(QuotewiseError):
    """Market data that cannot be read or trusted (malformed record, gap, wrong order)."""


class ConfigError(QuotewiseError):
    """A parameter, flag or config file value that is invalid."""
