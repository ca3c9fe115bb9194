"""search.storage."""
