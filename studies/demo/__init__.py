"""Demo and synthetic seeding, in one place: the synthetic data generator and the demo seed."""
