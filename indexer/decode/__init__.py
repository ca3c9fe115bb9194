"""indexer.decode."""
