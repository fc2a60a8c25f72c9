"""The Jupyter side of the board link (never sent to a board)."""
