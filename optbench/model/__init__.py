"""Models of the benchmark tracks: the track-3 GPT (gpt.py) and the NanoGPT-Medium record model (medium.py)."""
