"""search.images."""
