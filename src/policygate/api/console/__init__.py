"""The web console: the governed record for people who would rather look than read JSON.

Read-only pages under ``/ui`` served by ``policygate serve``, rendered on the server from the decision
log (Jinja2), behind the API's authentication and ``read`` scope (docs/console.md).
"""
