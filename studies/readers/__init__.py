"""Reader studies: accounts, the rating form, study design and lifecycle, rating, judgments."""
