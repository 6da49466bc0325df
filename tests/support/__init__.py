"""Test support shared by several test folders: the synthetic reader-study world."""
