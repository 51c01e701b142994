"""Example applications for aioendpoints."""
