"""conv3dt: reports."""
