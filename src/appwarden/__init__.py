"""appwarden: the security system around a POS platform's app marketplace."""
