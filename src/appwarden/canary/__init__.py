"""Canary records: synthetic customers issued to one connection each, to prove where a leak came from."""
