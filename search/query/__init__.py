"""search.query."""
