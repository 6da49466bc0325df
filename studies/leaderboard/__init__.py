"""studies/leaderboard."""
