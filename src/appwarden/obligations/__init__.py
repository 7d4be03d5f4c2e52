"""Vendor obligations: what each vendor may still hold, and what it should no longer hold."""
