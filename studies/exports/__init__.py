"""Exports: the one table renderer and the single-case report document."""
