"""Predictions from a model served at a URL in SageMaker's inference container contract (`POST /invocations`,
JSON in and out): what `plexus serve` answers, or any SageMaker-compatible server. The same requests and answers
as `predict.predict_endpoint`, over plain HTTP (the standard library's urllib: no boto3, no signing)."""

from __future__ import annotations

import json
from typing import Any

from plexus_infra.core.errors import PlexusError
from plexus_train.predict import answers_of, requests

TIMEOUT_SECONDS = 60.0
JSON = "application/json"


def invocations_url(url: str) -> str:
    """The invocations address of a served model: `URL/invocations`, unless `url` already ends with it.

    Example: `invocations_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/invocations"`
    """
    if not url.startswith(("http://", "https://")):
        raise PlexusError(f"--endpoint-url {url}: not an http:// or https:// URL")
    base = url.rstrip("/")
    return base if base.endswith("/invocations") else f"{base}/invocations"


def invoke_url(url: str, texts: list[str], timeout: float = TIMEOUT_SECONDS) -> list[dict[str, Any]]:
    """One `{"value", "confidence", "probabilities"}` per text, in order, asked of the model served at `url` in
    batches (`predict.requests`); a server that cannot be reached, or answers an error or something other than
    JSON, is one line naming the URL."""
    target = invocations_url(url)
    answers: list[dict[str, Any]] = []
    for chunk, body in requests(texts):
        answers += answers_of(_post(target, body, timeout), chunk, target)
    return answers


def _post(target: str, body: bytes, timeout: float) -> Any:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(target, data=body, method="POST", headers={"Content-Type": JSON, "Accept": JSON})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            raw = reply.read()
    except urllib.error.HTTPError as exc:
        detail = " ".join(exc.read().decode("utf-8", "replace").split())[:200]
        raise PlexusError(f"{target} answered HTTP {exc.code}{': ' + detail if detail else ''}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PlexusError(f"{target}: cannot connect ({reason})") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise PlexusError(f"{target} answered with something other than JSON: {raw[:80]!r}") from None
