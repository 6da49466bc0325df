"""studies/preferences."""
