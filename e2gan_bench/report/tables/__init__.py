"""The tables' arithmetic from run records: leaderboard, effects, time to quality, costs, tuning, targets."""
