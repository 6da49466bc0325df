"""studies/store."""
