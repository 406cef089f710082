"""The composition root: Settings (as given in code) and the caller's sources decide what runs; two
runtimes in one process share nothing; closing one releases what it opened."""

from __future__ import annotations

from pathlib import Path

from policygate.config import Settings
from policygate.config.links import CounterpartLinks
from policygate.evidence import Subject, Target
from policygate.refs import ModelRef, parse
from policygate.runtime import open_runtime
from policygate.sources.base import Parts
from tests.support.checkout import REGO, opa_binary


class Recorded:
    """An evidence source answering one model version, linking it to an Azure ML counterpart."""

    platform = "mlflow"

    def __init__(self, link_tag: str) -> None:
        self.link_tag = link_tag
        self.closed = False

    def collect(self, ref: ModelRef) -> Parts:
        subject = Subject(
            platform="mlflow",
            name=ref.name,
            version=str(ref.version),
            ref=str(ref),
            tags={self.link_tag: "azureml:fraud-detector:3"},
        )
        return Parts(platform="mlflow", endpoint="recorded", subject=subject)

    def probe(self) -> str | None:
        return None

    def close(self) -> None:
        self.closed = True


def test_settings_given_in_code_and_the_callers_sources_are_what_runs(tmp_path: Path) -> None:
    import os

    os.environ["POLICYGATE_LINKS__AZUREML"] = "from.the.environment"
    try:
        settings = Settings(
            db_url=f"sqlite:///{tmp_path}/a.db",
            policy_dir=REGO,
            opa_bin=opa_binary(),
            links=CounterpartLinks(azureml="given.in.code"),
        )
        source = Recorded("given.in.code")
        with open_runtime(settings, sources={"mlflow": source}) as runtime:
            assert runtime.service.collector.links.azureml == "given.in.code"
            evidence = runtime.service.collect(parse("mlflow:models:/m/1"), Target(stage="production"))
            # the link named by the code's setting was followed (to no Azure source: named as failed)
            failed = [s for s in evidence.collection.sources if not s.ok]
            assert failed and "no azureml source is configured" in (failed[0].error or "")
        assert source.closed
    finally:
        del os.environ["POLICYGATE_LINKS__AZUREML"]


def test_two_runtimes_share_nothing(tmp_path: Path) -> None:
    def settings(name: str) -> Settings:
        return Settings(
            db_url=f"sqlite:///{tmp_path}/{name}.db",
            policy_dir=REGO,
            opa_bin=opa_binary(),
            watch=True,
            engine="http",
        )

    with open_runtime(settings("a")) as a, open_runtime(settings("b")) as b:
        assert a.engine is not None and b.engine is not None and a.engine.url != b.engine.url
        assert a.waivers is not None and b.waivers is not None and a.waivers is not b.waivers
        assert a.watcher is not None and b.watcher is not None and a.watcher.engine is a.engine
        assert a.metrics.registry is not b.metrics.registry
        assert a.authenticator.tokens is not b.authenticator.tokens
