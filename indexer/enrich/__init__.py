"""indexer.enrich.captions."""
