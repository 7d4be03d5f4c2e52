"""Security events: one table of enumerated ``source:subject:action`` tags, recorded in one place."""
