package policygate_test

_warn_ids_of(ev) := {w.id | some w in decide(ev).warn}

_no_directory := without("/identities")

# No directory: the three rules warn "not checked", nothing denies -----------

test_identity_rules_warn_without_directory if {
	d := decide(_no_directory)
	d.allow == true
	d.deny == []
	_warn_ids_of(_no_directory) == {"OWN-004", "APR-004", "ACC-005"}
	every w in d.warn {
		contains(w.message, "not checked: no directory")
		w.unchecked == true
	}
}

test_identity_rules_warn_with_null_directory if {
	ev := with_value("/identities/directory", null)
	decide(ev).deny == []
	_warn_ids_of(ev) == {"OWN-004", "APR-004", "ACC-005"}
}

test_require_directory_makes_them_deny if {
	ids := deny_ids(_no_directory) with data.policygate_test.changed_params as {"require_directory": true}
	ids == {"OWN-004", "APR-004", "ACC-005"}
}

test_no_directory_counts_approvals_as_before if {
	ev := json.patch(_no_directory, [{"op": "add", "path": "/ownership/risk_tier", "value": "high"}])
	not "APR-001" in deny_ids(ev)
}

test_unchecked_in_dryrun_mode_is_only_reported if {
	d := decide(_no_directory) with data.policygate_test.changed_params as {"modes": {"OWN-004": "dryrun"}}
	"OWN-004" in {r.id | some r in d.dryrun}
	not "OWN-004" in _warn_ids_of(_no_directory) with data.policygate_test.changed_params as {"modes": {"OWN-004": "dryrun"}}
}

# OWN-004 ---------------------------------------------------------------------

test_own004_passes_for_active_person if not "OWN-004" in deny_ids(compliant)

test_own004_denies_inactive_owner if {
	ev := with_value("/identities/owner/active", false)
	deny_ids(ev) == {"OWN-004"}
	[r] := denials(ev, "OWN-004")
	contains(r.message, "disabled or has left")
}

test_own004_denies_unknown_owner if {
	ev := with_value("/identities/owner/found", false)
	[r] := denials(ev, "OWN-004")
	contains(r.message, "unknown to the directory")
}

test_own004_denies_service_owner if {
	ev := with_value("/identities/owner/kind", "service")
	[r] := denials(ev, "OWN-004")
	contains(r.message, "not a person")
}

test_own004_denies_owner_not_looked_up if {
	ev := with_value("/identities/owner/id", "mallory@example.com")
	"OWN-004" in deny_ids(ev)
}

test_own004_case_insensitive_id if not "OWN-004" in deny_ids(with_value("/identities/owner/id", "Alice@Example.com"))

test_own004_staging_denies_development_does_not if {
	ev := with_value("/identities/owner/active", false)
	"OWN-004" in deny_ids(json.patch(ev, [{"op": "add", "path": "/request/target/stage", "value": "staging"}]))
	not "OWN-004" in deny_ids(json.patch(ev, [{"op": "add", "path": "/request/target/stage", "value": "development"}]))
}

# APR-004 ---------------------------------------------------------------------

test_apr004_passes_for_active_approvers if not "APR-004" in deny_ids(compliant)

test_apr004_inactive_approver_does_not_count if {
	ev := with_value("/identities/approvers/1/active", false)
	deny_ids(ev) == {"APR-004"}

	# both inactive: nothing counts, APR-001 denies too
	ev2 := with_value("/identities/approvers", [])
	deny_ids(ev2) == {"APR-001", "APR-004"}
}

test_apr004_group_required_for_high_tier if {
	ev := patched([
		{"op": "add", "path": "/ownership/risk_tier", "value": "high"},
		{"op": "add", "path": "/identities/approvers/1/groups", "value": ["payments-risk"]},
	])
	[r] := denials(ev, "APR-004")
	contains(r.message, "approver group")
	"APR-001" in deny_ids(ev)
	not "APR-004" in deny_ids(with_value("/ownership/risk_tier", "high"))
}

test_apr004_unknown_tier_needs_every_listed_group if {
	ev := patched([
		{"op": "add", "path": "/ownership/risk_tier", "value": "extreme"},
		{"op": "add", "path": "/identities/approvers/1/groups", "value": []},
	])
	"APR-004" in deny_ids(ev)
}

# ACC-005 ---------------------------------------------------------------------

test_acc005_passes_for_federated_owned_identity if not "ACC-005" in deny_ids(compliant)

test_acc005_denies_client_secret if {
	ev := with_value("/identities/deployment/credentials", [{"type": "secret", "expires": "2026-12-01"}])
	deny_ids(ev) == {"ACC-005"}
	[r] := denials(ev, "ACC-005")
	contains(r.message, "client secret")
}

test_acc005_denies_long_lived_certificate if {
	ev := with_value("/identities/deployment/credentials", [{"type": "certificate", "expires": "2028-01-01T00:00:00Z"}])
	[r] := denials(ev, "ACC-005")
	contains(r.message, "long-lived certificate")
}

test_acc005_denies_certificate_without_expiry if {
	ev := with_value("/identities/deployment/credentials", [{"type": "certificate", "expires": null}])
	"ACC-005" in deny_ids(ev)
}

test_acc005_short_certificate_passes if {
	ev := with_value("/identities/deployment/credentials", [{"type": "certificate", "expires": "2026-12-20T00:00:00Z"}])
	not "ACC-005" in deny_ids(ev)
}

test_acc005_denies_without_active_owner if {
	"ACC-005" in deny_ids(with_value("/identities/deployment/owners", []))
	"ACC-005" in deny_ids(with_value("/identities/deployment/owners/0/kind", "service"))
}

test_acc005_denies_unknown_identity if {
	"ACC-005" in deny_ids(with_value("/identities/deployment", null))
	"ACC-005" in deny_ids(with_value("/identities/deployment/found", false))
}

test_acc005_only_production if {
	ev := patched([
		{"op": "add", "path": "/identities/deployment/credentials", "value": [{"type": "secret"}]},
		{"op": "add", "path": "/request/target/stage", "value": "staging"},
	])
	not "ACC-005" in deny_ids(ev)
}

test_acc005_no_deployment_identity_nothing_to_check if {
	ev := without("/deployment/identity")
	not "ACC-005" in deny_ids(ev)
	not "ACC-005" in _warn_ids_of(json.patch(ev, [{"op": "remove", "path": "/identities"}]))
}

test_acc005_denies_disabled_identity if {
	ev := with_value("/identities/deployment/active", false)
	[r] := denials(ev, "ACC-005")
	contains(r.message, "is disabled")
}
