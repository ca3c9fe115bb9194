"""The pixseek engine: models, catalog, vector store, FAISS index, queries and the JSON API.

`search` is the bottom layer: `indexer` and `web` import it, it imports neither of them.
"""
