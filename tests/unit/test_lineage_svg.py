"""The lineage picture: the columns the evidence supports, links only to web pages, text kept inert."""

from __future__ import annotations

from policygate.api.console.lineage import Links, graph, svg

EVIDENCE = {
    "subject": {"platform": "mlflow", "name": "fraud", "version": "7", "aliases": ["champion"]},
    "lineage": {
        "run": {"platform": "mlflow", "id": "r1", "experiment": {"id": "3"}},
        "code": {"commit": "9f2c1e7a4b6d8f0e", "repository": "https://github.com/corp/models.git"},
        "datasets": [
            {"name": "tx", "source": "javascript:alert(1)", "context": "training"},
            {"name": '<b onclick="x">', "source": 'https://data.example/" onmouseover="alert(2)'},
        ],
    },
}


def test_columns_links_and_escaping() -> None:
    columns = graph(
        EVIDENCE, {"production": {"outcome": "deny", "decision_id": "d/1"}}, Links("http://mlflow:5000")
    )
    assert [c[0].kind for c in columns] == ["dataset", "run", "commit", "model", "deployment", "decision"]
    assert columns[0][0].href is None  # never a javascript: link
    assert columns[1][0].href == "http://mlflow:5000/#/experiments/3/runs/r1"
    assert columns[2][0].href == "https://github.com/corp/models/commit/9f2c1e7a4b6d8f0e"
    assert columns[3][0].href == "http://mlflow:5000/#/models/fraud/versions/7"
    assert columns[5][0].href == "/ui/decisions/d%2F1" and columns[5][0].state == "deny"
    drawn = str(svg(columns, "Lineage of <fraud>"))
    assert "<b onclick" not in drawn and "&lt;b onclick=&#34;x&#34;&gt;" in drawn
    assert 'onmouseover="alert' not in drawn and "javascript:" not in drawn
    assert '<title id="lineage-title">Lineage of &lt;fraud&gt;</title>' in drawn
    assert drawn.count('class="edge"') == 2 + 1 + 1 + 1 + 1  # datasets->run, then one edge per column


def test_nothing_to_draw_without_evidence() -> None:
    assert graph({}, {}, Links()) == [] and str(svg([], "x")) == ""
