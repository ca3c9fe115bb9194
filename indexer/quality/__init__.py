"""indexer.quality."""
