"""Use cases of the admin API: each owns its transaction and its audit entry."""
