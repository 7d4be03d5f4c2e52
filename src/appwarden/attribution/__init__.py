"""Leak attribution: read a leaked dump, normalise it, find the people through the blind index."""
