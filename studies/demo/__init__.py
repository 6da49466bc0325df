"""studies/demo."""
