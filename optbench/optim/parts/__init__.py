"""Composable optimizer parts from the track-3 leaderboard: a base update, transforms, an apply part, schedules,
an outer look-ahead and a readout, combined by recipes (``[parts.NAME]`` tables) into a ``Chain`` optimizer.

``catalog`` lists them; ``chain.Chain`` runs the per-parameter ones; ``build`` turns a recipe's parts into
optimizers for a model. Each part module is torch + stdlib only, so an exported script inlines just the ones it uses.
"""

from optbench.optim.parts.chain import Chain  # noqa: E402,F401  (registers the "chain" optimizer)
