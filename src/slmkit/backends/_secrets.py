"""Secrets that ride in a URL (user-info, ``?api-key=...``) and how to keep them unseen.

A key in ``base_url`` would otherwise show in ``LLM.info``, reprs and every error.
The URL shown anywhere is :func:`display_url`; the real one goes only to the SDK.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit, urlunsplit

__all__ = ["display_url", "guard_sdk_logs", "redact", "url_secrets"]

#: Query parameters that carry credentials (API keys, SAS signatures, function codes).
_SECRET_PARAM = re.compile(r"key|token|secret|sig|signature|password|passwd|code|auth|cred", re.I)
#: Shorter strings are placeholders ("x", "none"), not secrets; masking them garbles text.
MIN_SECRET_LENGTH = 8


def url_secrets(url: str) -> list[str]:
    """The secret parts of ``url``: user-info and the values of credential parameters."""
    parts = urlsplit(url)
    found = [value for value in (parts.username, parts.password) if value]
    found += [
        v for k, v in parse_qsl(parts.query, keep_blank_values=True) if _SECRET_PARAM.search(k)
    ]
    return [s for s in found if s]


def display_url(url: str) -> str:
    """``url`` with user-info and credential parameters replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{k}=***" if _SECRET_PARAM.search(k) else f"{k}={v}" if v else k
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (also URL-encoded) replaced by ``***``."""
    for secret in secrets:
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, "***")
    return text


#: The loggers where SDKs write request URLs (httpx logs every request at INFO).
SDK_LOGGERS = (
    "httpx",
    "httpx2",
    "httpcore",
    "openai",
    "openai._base_client",
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.core.pipeline.policies._universal",
)
_known: set[str] = set()


class _RedactSecrets(logging.Filter):
    """Rewrites an SDK's log record without the secrets of any endpoint loaded here."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, _known)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactSecrets()


def guard_sdk_logs(secrets: Iterable[str | None]) -> None:
    """Keep ``secrets`` out of what the SDKs log (their loggers are not slmkit's to mute)."""
    _known.update(s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH)
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
