"""The lineage picture of a model version, drawn here as SVG (no library, no script): datasets ->
run/job -> code commit -> model version -> deployment(s) -> release decisions, each node linking to
where it lives (the MLflow run page, the Azure ML job, the commit, the decision's page).

Built from the newest collected evidence and the latest decision per target; a part the evidence
does not have is left out, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

COLUMNS = ("dataset", "run", "commit", "model", "deployment", "decision")
WIDTH, HEIGHT, GAP_X, GAP_Y, PAD = 154, 46, 30, 16, 12
SHOWN = 17  # characters of a label that fit a node; the full text is in its tooltip
MAX_PER_COLUMN = 12  # beyond that, one node says how many more


@dataclass(frozen=True)
class Node:
    kind: str  # one of COLUMNS
    label: str  # the value shown
    caption: str  # what it is ("dataset", "MLflow run", ...)
    href: str | None = None
    state: str = ""  # allow | deny | error for decisions: a CSS class


@dataclass(frozen=True)
class Links:
    """Where the platforms' own pages are (None: not linked)."""

    mlflow_ui: str | None = None
    azure_workspace: str | None = None  # ARM id of the workspace (Azure ML studio's wsid)


def graph(evidence: dict[str, Any], latest: dict[str, dict[str, Any]], links: Links) -> list[list[Node]]:
    """The columns of nodes, left to right (empty columns dropped)."""
    subject = evidence.get("subject") or {}
    lineage = evidence.get("lineage") or {}
    platform = str(subject.get("platform") or "")
    columns: dict[str, list[Node]] = {kind: [] for kind in COLUMNS}
    for d in lineage.get("datasets") or []:
        version = f":{d['version']}" if d.get("version") else ""
        shown = f"{d.get('name')}{version}"
        columns["dataset"].append(
            Node("dataset", shown, f"dataset ({d.get('context') or 'input'})", _web(d.get("source")))
        )
    run = lineage.get("run") or {}
    if run.get("id"):
        caption = "Azure ML job" if run.get("platform") == "azureml" else "MLflow run"
        columns["run"].append(Node("run", str(run["id"]), caption, _run_link(run, links)))
    code = lineage.get("code") or {}
    if code.get("commit"):
        columns["commit"].append(Node("commit", str(code["commit"])[:12], "code commit", _commit_link(code)))
    if subject.get("name"):
        columns["model"].append(
            Node(
                "model",
                f"{subject['name']} v{subject.get('version')}",
                f"{platform} model version",
                _model_link(subject, links),
            )
        )
    deployment = evidence.get("deployment") or {}
    endpoint = deployment.get("endpoint") or {}
    if endpoint.get("name"):
        columns["deployment"].append(
            Node("deployment", str(endpoint["name"]), "online endpoint", _endpoint_link(endpoint, links))
        )
    for md in deployment.get("model_deployments") or []:
        columns["deployment"].append(Node("deployment", str(md.get("name")), "Foundry deployment"))
    for alias in subject.get("aliases") or []:
        columns["deployment"].append(Node("deployment", f"@{alias}", "MLflow alias"))
    for stage, d in sorted(latest.items()):
        columns["decision"].append(
            Node(
                "decision",
                f"{stage}: {d.get('outcome')}",
                "release decision",
                f"/ui/decisions/{quote(str(d.get('decision_id')), safe='')}",
                str(d.get("outcome") or ""),
            )
        )
    return [_capped(nodes) for nodes in columns.values() if nodes]


def svg(columns: list[list[Node]], title: str) -> Markup:
    if not columns:
        return Markup("")
    rows = max(len(c) for c in columns)
    width = PAD * 2 + len(columns) * WIDTH + (len(columns) - 1) * GAP_X
    height = PAD * 2 + rows * HEIGHT + (rows - 1) * GAP_Y
    out = [
        f'<svg class="lineage" role="img" aria-labelledby="lineage-title" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="lineage-title">{escape(title)}</title>',
    ]
    places = [[_place(i, j, len(col), rows) for j in range(len(col))] for i, col in enumerate(columns)]
    for i in range(len(columns) - 1):
        for x1, y1 in places[i]:
            for x2, y2 in places[i + 1]:
                a, b, mid = (x1 + WIDTH, y1 + HEIGHT / 2), (x2, y2 + HEIGHT / 2), (x1 + WIDTH + x2) / 2
                out.append(
                    f'<path class="edge" d="M{a[0]:.0f},{a[1]:.0f} C{mid:.0f},{a[1]:.0f} '
                    f'{mid:.0f},{b[1]:.0f} {b[0]:.0f},{b[1]:.0f}"/>'
                )
    for col, spots in zip(columns, places, strict=True):
        for node, (x, y) in zip(col, spots, strict=True):
            out.append(_node(node, x, y))
    out.append("</svg>")
    return Markup("".join(out))


def _node(node: Node, x: float, y: float) -> str:
    label = node.label if len(node.label) <= SHOWN else node.label[: SHOWN - 1] + "…"
    body = (
        f"<title>{escape(node.caption)}: {escape(node.label)}</title>"
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{WIDTH}" height="{HEIGHT}" rx="6"/>'
        f'<text class="caption" x="{x + 10:.0f}" y="{y + 17:.0f}">{escape(node.caption)}</text>'
        f'<text class="label" x="{x + 10:.0f}" y="{y + 35:.0f}">{escape(label)}</text>'
    )
    attrs = f'class="node {escape(node.kind)} {escape(node.state)}" data-kind="{escape(node.kind)}" ' + (
        f'data-label="{escape(node.label)}"'
    )
    if node.href:
        return f'<a href="{escape(node.href)}" {attrs}>{body}</a>'
    return f"<g {attrs}>{body}</g>"


def _place(i: int, j: int, count: int, rows: int) -> tuple[float, float]:
    offset = (rows - count) * (HEIGHT + GAP_Y) / 2  # each column centred
    return PAD + i * (WIDTH + GAP_X), PAD + offset + j * (HEIGHT + GAP_Y)


def _capped(nodes: list[Node]) -> list[Node]:
    if len(nodes) <= MAX_PER_COLUMN:
        return nodes
    more = len(nodes) - MAX_PER_COLUMN + 1
    return nodes[: MAX_PER_COLUMN - 1] + [Node(nodes[0].kind, f"{more} more", nodes[0].kind)]


def _web(uri: Any) -> str | None:
    return uri if isinstance(uri, str) and uri.startswith("https://") else None


def _run_link(run: dict[str, Any], links: Links) -> str | None:
    if run.get("platform") == "azureml":
        if links.azure_workspace:
            return f"https://ml.azure.com/runs/{quote(str(run['id']))}?wsid={quote(links.azure_workspace)}"
        return None
    experiment = (run.get("experiment") or {}).get("id")
    if links.mlflow_ui and experiment:
        base = links.mlflow_ui.rstrip("/")
        return f"{base}/#/experiments/{quote(str(experiment))}/runs/{quote(str(run['id']))}"
    return None


def _commit_link(code: dict[str, Any]) -> str | None:
    repository = _web(code.get("repository"))
    if repository and ("github.com/" in repository or "gitlab" in repository):
        return f"{repository.removesuffix('.git').rstrip('/')}/commit/{quote(str(code['commit']))}"
    return repository


def _model_link(subject: dict[str, Any], links: Links) -> str | None:
    name, version = quote(str(subject.get("name")), safe=""), quote(str(subject.get("version")), safe="")
    if subject.get("platform") == "mlflow" and links.mlflow_ui:
        return f"{links.mlflow_ui.rstrip('/')}/#/models/{name}/versions/{version}"
    if subject.get("platform") == "azureml" and links.azure_workspace:
        return f"https://ml.azure.com/model/{name}:{version}/details?wsid={quote(links.azure_workspace)}"
    return None


def _endpoint_link(endpoint: dict[str, Any], links: Links) -> str | None:
    if links.azure_workspace:
        name = quote(str(endpoint["name"]), safe="")
        return f"https://ml.azure.com/endpoints/realtime/{name}/detail?wsid={quote(links.azure_workspace)}"
    return None
