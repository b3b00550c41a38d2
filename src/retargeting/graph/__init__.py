"""The Conversions API client: one pooled HTTP connection set, every answer turned into a value.

The outbox dispatcher hands it pre-serialised request bodies and gets back `Accepted` or a
`GraphError`, which `domain.delivery.classify()` turns into a decision. Nothing here decides what
to do about an error: that policy is pure and lives in the domain.
"""
