"""The console's pages under ``/ui``: models, a model, a decision, the policy, reviews due; and sign-in.

Read-only: every page is a GET that reads the log (and OPA, for rule titles). The pages sit behind
the API's own authentication (policygate.api.auth): the ``read`` scope, from an ``Authorization``
header or from the session cookie that sign-in sets, which holds the caller's own token (HttpOnly,
SameSite=Strict, Secure unless served over plain http on loopback) and is checked on every request
like a bearer token, so a revoked token signs its sessions out at once.
"""

from __future__ import annotations

from fastapi import APIRouter

from policygate.api.console import decision_page, model_pages, policy_pages, reviews_page, session

# The pages, each module with its own; the order is the order they were declared in before the split.
router = APIRouter(include_in_schema=False)
for _pages in (model_pages, decision_page, policy_pages, reviews_page, session):
    router.include_router(_pages.router)
