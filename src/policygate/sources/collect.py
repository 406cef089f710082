"""Ask the source for the referenced platform and assemble the evidence document."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from policygate.evidence import EvidenceV1, Request
from policygate.refs import ModelRef
from policygate.sources.base import EvidenceSource, SourceError
from policygate.sources.merge import merge
from policygate.timeutil import now_iso


class Collector:
    def __init__(self, sources: Mapping[str, EvidenceSource]) -> None:
        self.sources = dict(sources)
        self.last_calls = 0

    def collect(self, ref: ModelRef, request: Request) -> EvidenceV1:
        source = self.sources.get(ref.platform)
        if source is None:
            hint = (
                "--mlflow-uri or MLFLOW_TRACKING_URI"
                if ref.platform == "mlflow"
                else "the workspace settings"
            )
            raise SourceError(ref.platform, "configure", f"no {ref.platform} source configured (set {hint})")
        parts = source.collect(ref)
        self.last_calls = parts.calls
        return merge([parts], request, collected_at=now_iso())

    def close(self) -> None:
        for source in self.sources.values():
            with contextlib.suppress(Exception):
                source.close()  # type: ignore[attr-defined]
