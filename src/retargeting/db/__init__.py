"""Storage: the only layer that talks to the database. Query functions never commit."""
