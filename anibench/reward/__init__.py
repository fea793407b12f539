"""Rewards for trainers: the in-process reward service, its HTTP server and client, and trainable heads.

Everything here sits on the core's scoring session (:mod:`anibench.session`): scorers are
plugins found through the registry, never imported by name.
"""
