"""``GET /``: the dashboard, one self-contained HTML page (inline CSS and JS, nothing fetched elsewhere).

The page holds no data and needs no token to load; it asks the operator for a token, keeps it
in the tab's ``sessionStorage`` and reads the API with it. Its Content-Security-Policy allows only
its own inline script (by hash) and requests to this gateway, so text that devices control
(topics, record ids, rejection details) can never run as script even if shown wrongly.
"""

import base64
import functools
import hashlib
import re
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])

_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@functools.cache
def _page() -> tuple[bytes, dict[str, str]]:
    """The page and its headers, read on first use (nothing is read at import time)."""
    html = resources.files("gateway.api").joinpath("dashboard.html").read_text(encoding="utf-8")
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode('utf-8')).digest()).decode('ascii')}'"
        for script in _SCRIPT.findall(html)
    )
    policy = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return html.encode("utf-8"), headers


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    content, headers = _page()
    return HTMLResponse(content=content, headers=headers)
