"""Training: one run = track + recipe + seed (loop.py), on 1 CPU to 8 GPUs (distributed.py)."""
