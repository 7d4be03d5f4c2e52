"""appwarden: the security system around a POS platform's app marketplace."""

__version__ = "0.1.0"
