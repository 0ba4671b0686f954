"""The HTML page (``leaderboard.html``) and its figures: HTML tables, plots and image grids."""
