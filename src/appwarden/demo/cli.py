"""Demo command."""


def demo() -> None:
    """Build a synthetic platform and drive app traffic (not yet built)."""
