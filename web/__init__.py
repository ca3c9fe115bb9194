"""The application shell: the ASGI app factory, HTML pages, and the `pixseek` command line.

`web` is the outermost layer: it imports `search` (and `indexer` for commands and jobs that
index); nothing imports `web`.
"""
