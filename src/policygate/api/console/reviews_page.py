"""The console's "Reviews due" page: the owners report (audit.owners) of the latest audit run, the
models in use ordered by when their owner's next review is due, overdue first (docs/identity.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from policygate.api.console.pages import page
from policygate.api.deps import Service
from policygate.audit.owners import OwnerRow, owners_report, params_of
from policygate.audit.run import latest_run

router = APIRouter(prefix="/ui", include_in_schema=False)


def review_order(row: OwnerRow) -> tuple[int, str, str]:
    """Overdue first (oldest due first), then never reviewed, then the next due soonest."""
    if row.review_overdue:
        return (0, row.next_review_due or "", row.model)
    if row.next_review_due is None:
        return (1, "", row.model)
    return (2, row.next_review_due, row.model)


@router.get("/reviews")
def reviews(request: Request, service: Service) -> Response:
    run = latest_run(service.log)
    report = (
        owners_report(service.log, run, params_of(request.app.state.settings.policy_path))
        if run is not None
        else None
    )
    rows = sorted(report.rows, key=review_order) if report is not None else []
    return page(request, "reviews.html", report=report, rows=rows)
