"""Exceptions the Graph API client raises: only for programming and configuration mistakes.

Network and HTTP problems are never raised; `GraphClient.send()` returns them as
`domain.delivery.GraphError` values. What is raised means the caller passed something unsafe::

    GraphClientError
    ├── GraphConfigurationError (also ValueError)  bad base URL or API version, at construction
    └── InvalidPixelId (also ValueError)           a pixel id that is not all digits, at send()
"""

from __future__ import annotations


class GraphClientError(Exception):
    """Root of the client's exceptions."""


class GraphConfigurationError(GraphClientError, ValueError):
    """The client was built with a base URL or version that would misroute or leak requests."""


class InvalidPixelId(GraphClientError, ValueError):
    """A pixel id goes into the URL path, so anything but digits could rewrite the request."""

    def __init__(self, pixel_id: str) -> None:
        # The value itself is not echoed: a token passed by mistake must not reach a log line.
        super().__init__(f"pixel id must be digits only (got {len(pixel_id)} characters)")
