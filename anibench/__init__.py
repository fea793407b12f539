"""anibench: an evaluation-first benchmark and reward suite for anime video generation.

The core package defines the data model (:class:`~anibench.suite.Case`,
:class:`~anibench.suite.Suite`, :class:`~anibench.conditions.Condition`,
:class:`~anibench.video.Video`, :class:`~anibench.scoring.ScoreResult`), the plugin
registries and the run engine. Scorers, generators and the leaderboard are plugins and
consumers installed as ``anibench.scorers``, ``anibench.generators`` and
``anibench.leaderboard``.
"""

__version__ = "0.1.0"
