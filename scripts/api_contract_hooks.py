"""A schemathesis check for scripts/api-contract.sh: every 4xx answer of
recsys serve, documented or not (a 405 for an undocumented method, say),
carries the JSON error body {"error": "..."}."""

import json

import schemathesis


@schemathesis.check
def error_body_on_every_4xx(ctx, response, case):
    if not 400 <= response.status_code < 500:
        return None
    ctype = response.headers.get("content-type", [""])
    ctype = ctype[0] if isinstance(ctype, list) else ctype
    if not ctype.startswith("application/json"):
        raise AssertionError(f"{response.status_code} with content type {ctype!r}, not JSON")
    body = json.loads(response.content)
    if not (isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]):
        raise AssertionError(f"{response.status_code} without an error message: {body!r}")
    return None
