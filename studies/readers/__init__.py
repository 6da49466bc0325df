"""studies/readers."""
