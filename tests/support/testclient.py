"""FastAPI's TestClient, imported without Starlette's "use httpx2" deprecation warning.

Starlette 1.x prefers the `httpx2` package for its test client and warns when it falls back to
`httpx`, which the Graph API client depends on; under `filterwarnings = error` that warning would
fail every web test at import. Adding `httpx2` to the dev dependencies would make this shim
unnecessary.
"""

from __future__ import annotations

import warnings

from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore",
        message="Using `httpx` with `starlette.testclient`",
        category=StarletteDeprecationWarning,
    )
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]
