"""studies/exports."""
