"""The data error, torch-free so the API can raise it while checking an upload."""

from __future__ import annotations


class DataError(ValueError):
    """A data set that cannot be loaded as asked: what is missing or wrong, and where."""

    code = "invalid_data"
