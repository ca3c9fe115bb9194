"""Image-text matching models that reorder search results: the `Reranker` protocol, the split
ITM machinery, and one module per implementation."""
