"""The game, scenarios, experiments, runners and the ``adlgame`` command line."""
