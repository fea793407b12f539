"""Leaderboards from run results (installed as ``anibench.leaderboard``).

Reads run directories through :func:`anibench.results.load_run` only, never the store
or other plugins: :mod:`.data` builds a :class:`~.data.Board` of samples, :mod:`.stats`
and :mod:`.tables` turn it into tables with intervals and ranks, :mod:`.formats` and
:mod:`.html` write them, :mod:`.compare` compares runs and gates a candidate, and
:mod:`.pytest_plugin` offers the gate as a pytest fixture.
"""
