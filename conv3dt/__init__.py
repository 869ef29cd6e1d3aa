"""conv3dt: conv3dt."""
