"""The stages of one indexing run, in order (`indexer.pipeline.index_paths` calls them):

- `collection`: open or create the collection, and load its encoder only when needed;
- `index_files`: under the writer lock, finish what a crashed writer left (temp files, a FAISS
  file older than the catalog) and, at the end, compact the vector store;
- `scan` and `reconcile`: find the files and sort them into new, changed and unchanged;
- `reuse`: give new files whose bytes the collection already embedded the existing vector;
- `embed`: decode, embed and store what is pending, batch by batch, in crash-safe order;
- `backfill`: read the taken time, camera and file type of older rows from their file headers
  (no re-embedding);
- `tagging`: tag what the embedding batches could not tag.

Each stage takes and returns the typed records of `indexer.records` and
`search.catalog.records`; `run.Run` carries what every stage of one run shares.
"""
