"""GreetNow retargeting: sends widget views and call starts to Meta's Conversions API."""

__version__ = "0.1.0"
