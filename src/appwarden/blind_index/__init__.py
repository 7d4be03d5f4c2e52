"""The blind index: keyed HMACs of customers' normalised identifying values, kept in step with every write."""
