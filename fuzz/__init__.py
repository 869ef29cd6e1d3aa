"""conv3dt: fuzz."""
