"""Submissions: export a recipe as one upstream-layout train_gpt_simple.py, check a script or log against the
benchmark rules, and pack a run into a workspace artifact folder."""
