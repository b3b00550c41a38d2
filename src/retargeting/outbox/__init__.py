"""The durable outbox: recording interactions with their events, and delivering them to Meta."""
