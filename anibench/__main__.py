"""``python -m anibench``: the same command line as ``anibench``."""

from anibench.cli import main

main()
