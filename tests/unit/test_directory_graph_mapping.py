"""Graph users and service principals as directory entries (sources.directory_graph), on bodies in the
shapes of Microsoft's Graph API reference examples; the HTTP side is in
tests/integration/test_identity_graph.py."""

from __future__ import annotations

from datetime import UTC, datetime

from policygate.sources.directory import Credential
from policygate.sources.directory_graph import sp_entry, user_entry

NOW = datetime(2026, 12, 7, tzinfo=UTC)
USER = {
    "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
    "userPrincipalName": "AdeleV@contoso.com",
    "accountEnabled": True,
    "userType": "Member",
    "employeeLeaveDateTime": None,
    "department": "Retail",
    "manager": {
        "@odata.type": "#microsoft.graph.user",
        "id": "x",
        "userPrincipalName": "MiriamG@contoso.com",
    },
}


def test_an_enabled_member_is_an_active_person() -> None:
    e = user_entry("adelev@contoso.com", USER, ["Sales", "All Company"], NOW)
    assert (e.id, e.found, e.active, e.kind, e.groups, e.manager, e.department) == (
        "AdeleV@contoso.com", True, True, "person", ("All Company", "Sales"), "MiriamG@contoso.com", "Retail",
    )  # fmt: skip


def test_disabled_left_or_unreadable_leave_date_is_not_active() -> None:
    assert not user_entry("a", {**USER, "accountEnabled": False}, [], NOW).active
    assert not user_entry("a", {**USER, "employeeLeaveDateTime": "2026-11-30T00:00:00Z"}, [], NOW).active
    assert user_entry("a", {**USER, "employeeLeaveDateTime": "2027-03-31T00:00:00Z"}, [], NOW).active
    assert not user_entry("a", {**USER, "employeeLeaveDateTime": "soon"}, [], NOW).active
    assert user_entry("a", {**USER, "userType": "Guest"}, [], NOW).kind == "person"


def test_a_passed_leave_date_says_left_a_disabled_account_does_not() -> None:
    assert user_entry("a", {**USER, "employeeLeaveDateTime": "2026-11-30T00:00:00Z"}, [], NOW).left
    assert not user_entry("a", {**USER, "accountEnabled": False}, [], NOW).left
    assert not user_entry("a", {**USER, "employeeLeaveDateTime": "2027-03-31T00:00:00Z"}, [], NOW).left


def test_service_principal_credentials_of_the_sp_and_its_application() -> None:
    sp = {
        "id": "00af5dfb-85da-4b41-a677-0c6b86dd34f8",
        "accountEnabled": True,
        "passwordCredentials": [],
        "keyCredentials": [{"endDateTime": "2027-06-01T00:00:00Z", "type": "AsymmetricX509Cert"}],
    }
    app = {
        "passwordCredentials": [{"endDateTime": "2027-01-01T00:00:00Z", "hint": "Zx9", "secretText": None}],
        "keyCredentials": [],
        "federatedIdentityCredentials": [{"name": "github", "audiences": ["api://AzureADTokenExchange"]}],
    }
    e = sp_entry("00AF5DFB-85da-4b41-a677-0c6b86dd34f8", sp, ["alice@corp"], app)
    assert (e.found, e.active, e.kind, e.owners) == (True, True, "service", ("alice@corp",))
    assert e.credentials == (
        Credential("certificate", "2027-06-01T00:00:00Z"),
        Credential("secret", "2027-01-01T00:00:00Z"),
        Credential("federated"),
    )
    managed = sp_entry("x", {**sp, "keyCredentials": [], "accountEnabled": False}, [], None)
    assert managed.credentials == () and not managed.active


def test_user_paths_are_one_escaped_segment() -> None:
    from policygate.sources.directory_graph import _user_path

    assert _user_path("alice@corp") == "/users/alice@corp"
    assert _user_path("bob_contoso.com#EXT#@corp.onmicrosoft.com") == (
        "/users/bob_contoso.com%23EXT%23@corp.onmicrosoft.com"
    )
    assert _user_path("a/../groups?x=1") == "/users/a%2F..%2Fgroups%3Fx%3D1"
    assert _user_path("$adele@corp") == "/users('$adele@corp')"
