"""Keep secrets that travel in URLs out of logs, records and output: query parameters that carry
credentials (Event Grid's ?code=, ?access_token=, ?token=, ?sig=, ...) and a URL's user:password."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

# a query parameter whose name says it carries a credential
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:[\w.\-]*(?:token|secret|password|passwd|pwd|key|credential)[\w.\-]*|code|sig|signature|auth)=)"
    r"[^&;#\s\"']*"
)
# user:password@ (or a bare token@) in any URL inside the text
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/@\s\"']+@")


def redact(text: str) -> str:
    """``text`` with every credential in a URL replaced by ``[redacted]``."""
    if "=" not in text and "@" not in text:
        return text
    return _USERINFO.sub(r"\1[redacted]@", _SECRET_QUERY.sub(r"\1[redacted]", text))


def redact_url(uri: str) -> str:
    """A URL fit for evidence and messages: no user or password, no credential in the query."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=host)
    return redact(urlunsplit(parts))


class RedactQuerySecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    """On the access and error loggers, and on every handler of the root logger (records from any
    library pass through those)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(RedactQuerySecrets())
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactQuerySecrets())
