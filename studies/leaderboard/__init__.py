"""The leaderboard: systems scored with CIs against a baseline (build) and its tables."""
