"""`python -m web.cli`: the same as the `pixseek` console script."""

from web.cli import main

main()
