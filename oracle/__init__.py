"""conv3dt: oracle."""
