"""metrics: pure scoring (text metrics, clinical findings, paired significance); no database."""
