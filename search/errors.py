"""Every error pixseek raises on purpose, written for the person who meets it.

Hierarchy::

    PixseekError                 base; `str(err)` is a complete sentence with what to do next
    ├── ConfigError              a setting, flag or environment variable is wrong
    ├── ModelError               a model spec cannot be parsed or its weights cannot be loaded
    │   └── ModelMismatchError   an index was built with a different encoder than the query's
    ├── CatalogError             the catalog database is unreachable or has the wrong schema
    │   └── SchemaOutOfDateError the catalog needs `pixseek db upgrade`
    ├── NotFoundError            an image id, collection or file that does not exist
    ├── InputError               a query, upload or path given by the user is unusable
    └── IndexLockedError         another process is writing to the same collection

The CLI catches `PixseekError` once and prints the message; the web app maps each class
to an HTTP status in one handler (`http_status`).
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "ConfigError",
    "IndexLockedError",
    "InputError",
    "ModelError",
    "ModelMismatchError",
    "NotFoundError",
    "PixseekError",
    "SchemaOutOfDateError",
]


class PixseekError(Exception):
    """Base class: the message is meant to be shown to a user as-is."""

    http_status: int = 500
    code: str = "error"


class ConfigError(PixseekError):
    http_status = 500
    code = "config_error"


class ModelError(PixseekError):
    http_status = 503
    code = "model_error"


class ModelMismatchError(ModelError):
    http_status = 409
    code = "model_mismatch"


class CatalogError(PixseekError):
    http_status = 503
    code = "catalog_error"


class SchemaOutOfDateError(CatalogError):
    code = "schema_out_of_date"


class NotFoundError(PixseekError):
    http_status = 404
    code = "not_found"


class InputError(PixseekError):
    http_status = 400
    code = "bad_input"


class IndexLockedError(PixseekError):
    http_status = 409
    code = "index_locked"
