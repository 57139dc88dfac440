"""Reading the console's forms in tests that post them without a browser."""

from __future__ import annotations

import re


def csrf_of(html: str) -> str:
    """The CSRF token a console page's forms carry."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)
