"""Every value a platform returns is capped, so one oversized tag cannot fill the decision log.

A string longer than the cap is cut to it and its path listed in ``collection.gaps`` (the full
value is not evidence policygate kept; a required field that was cut denies under EVD-001); a key
longer than the cap is dropped, its object's path listed the same way.
"""

from __future__ import annotations

from typing import Any

from policygate.evidence import EvidenceV1

MAX_VALUE_CHARS = 64 * 1024
MAX_KEY_CHARS = 1024


def cap_values(evidence: EvidenceV1, max_chars: int = MAX_VALUE_CHARS) -> EvidenceV1:
    """``evidence`` unchanged when every value fits (the usual case: no copy), else a capped copy."""
    doc = evidence.model_dump(mode="python", by_alias=True)
    cut: list[str] = []
    capped = _walk(doc, "", max_chars, cut)
    if not cut:
        return evidence
    collection = capped.setdefault("collection", {})
    collection["gaps"] = sorted(set(collection.get("gaps") or []) | set(cut))
    return EvidenceV1.model_validate(capped)


def _walk(value: Any, path: str, max_chars: int, cut: list[str]) -> Any:
    if isinstance(value, str):
        if len(value) > max_chars:
            cut.append(path)
            return value[:max_chars]
        return value
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            if len(key) > MAX_KEY_CHARS:
                cut.append(path or "(document)")
                continue
            kept[key] = _walk(item, f"{path}.{key}" if path else key, max_chars, cut)
        return kept
    if isinstance(value, list):
        return [_walk(item, f"{path}[{i}]", max_chars, cut) for i, item in enumerate(value)]
    return value
