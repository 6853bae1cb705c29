"""Published cells as .cell files."""
