"""Tables from run results (installed as ``anibench.leaderboard``).

Consumes run directories through :mod:`anibench.results` only. ``anibench report``
prints :func:`~anibench.leaderboard.tables.summary_table` as Markdown and writes CSV.
"""
