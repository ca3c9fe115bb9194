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
    │   └── TooLargeError        an upload or request body over its size limit
    ├── ForbiddenError           a request this server's settings do not allow (a path outside
    │                            PIXSEEK_ALLOWED_ROOTS, a file that left its collection's root)
    ├── IndexLockedError         another process is writing to the same collection
    └── StorageError             the data directory cannot be written (read-only, no permission)
        └── DiskFullError        no space left on the disk of a file pixseek was writing

`StorageError` is also an `OSError` (it carries `errno` and `filename`), so code that already
handles failed file writes keeps handling it.

The CLI catches `PixseekError` once and prints the message; the web app maps each class
to an HTTP status in one handler (`http_status`).
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "ConfigError",
    "DiskFullError",
    "ForbiddenError",
    "IndexLockedError",
    "InputError",
    "ModelError",
    "ModelMismatchError",
    "NotFoundError",
    "PixseekError",
    "SchemaOutOfDateError",
    "StorageError",
    "TooLargeError",
]


class PixseekError(Exception):
    """Base class: the message is meant to be shown to a user as-is."""

    http_status: int = 500
    code: str = "error"


class ConfigError(PixseekError):
    """A setting, flag or environment variable is wrong."""

    http_status = 500
    code = "config_error"


class ModelError(PixseekError):
    """A model spec cannot be parsed or its weights cannot be loaded."""

    http_status = 503
    code = "model_error"


class ModelMismatchError(ModelError):
    """An index was built with a different encoder than the query's."""

    http_status = 409
    code = "model_mismatch"


class CatalogError(PixseekError):
    """The catalog database is unreachable or has the wrong schema."""

    http_status = 503
    code = "catalog_error"


class SchemaOutOfDateError(CatalogError):
    """The catalog needs `pixseek db upgrade`."""

    code = "schema_out_of_date"


class NotFoundError(PixseekError):
    """An image id, collection or file that does not exist."""

    http_status = 404
    code = "not_found"


class InputError(PixseekError):
    """A query, upload or path given by the user is unusable."""

    http_status = 400
    code = "bad_input"


class TooLargeError(InputError):
    """An upload or request body over its size limit (PIXSEEK_MAX_UPLOAD_BYTES)."""

    http_status = 413
    code = "too_large"


class ForbiddenError(PixseekError):
    """A request the server's settings do not allow; the message names the setting."""

    http_status = 403
    code = "forbidden"


class IndexLockedError(PixseekError):
    """Another process is writing to the same collection."""

    http_status = 409
    code = "index_locked"


class StorageError(PixseekError, OSError):
    """A write under the data directory failed for a reason the user must fix (built by
    `search.storage.storage_errors.storage_error`, which names the path and what to do).
    `errno` and `filename` are those of the failed write; `str()` is the sentence for the user."""

    http_status = 503
    code = "storage_error"

    def __init__(
        self, message: str, *, errno: int | None = None, filename: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errno = errno
        self.filename = filename

    def __str__(self) -> str:
        return self.message


class DiskFullError(StorageError):
    """No space left on the disk of a file pixseek was writing."""

    http_status = 507
    code = "disk_full"
