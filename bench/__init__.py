"""Benchmarks of aioendpoints against raw aiohttp and its peers: ``python -m bench``."""
