"""Rank studies: does a cheap track order optimizers as the full benchmark does (docs/proxy.md)."""
