"""Bulk and incremental indexing: sources -> decode -> embed -> store.

`indexer` builds on `search` (catalog, vector store, FAISS index, models); it never imports `web`.
"""
