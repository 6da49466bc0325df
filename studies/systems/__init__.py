"""studies/systems."""
