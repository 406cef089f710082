package policygate_test

approval(by, stage, at) := {
	"by": by, "decision": "approved", "stage": stage, "at": at,
	"source": "test", "verified": false,
}

with_approvals(approvals) := with_value("/approvals", approvals)

bob := approval("bob@example.com", "production", "2026-11-10T15:20:00Z")

dave := approval("dave@example.com", "production", "2026-11-12T08:45:00Z")

high_risk(ev) := json.patch(ev, [{"op": "add", "path": "/ownership/risk_tier", "value": "high"}])

# APR-001 ---------------------------------------------------------------------

test_apr001_passes_with_enough_approvals if not "APR-001" in deny_ids(compliant)

test_apr001_fails_without_approvals if {
	ev := with_approvals([])
	deny_ids(ev) == {"APR-001"}
	[r] := denials(ev, "APR-001")
	contains(r.message, "needs 1 independent, fresh approval(s) for production; found 0 (none)")
	contains(r.message, "medium-risk")
}

test_apr001_approvals_for_another_stage_do_not_count if {
	ev := with_approvals([
		approval("bob@example.com", "staging", "2026-11-10T15:20:00Z"),
		approval("dave@example.com", "development", "2026-11-12T08:45:00Z"),
	])
	deny_ids(ev) == {"APR-001"}
}

test_apr001_stage_is_case_insensitive if {
	not "APR-001" in deny_ids(with_approvals([approval("bob@example.com", "Production", "2026-11-10T15:20:00Z")]))
}

test_apr001_rejections_do_not_count if {
	ev := with_approvals([object.union(bob, {"decision": "rejected"}), object.union(dave, {"decision": "rejected"})])
	deny_ids(ev) == {"APR-001"}
}

entry(who, decision, at) := object.union(approval(who, "production", at), {"decision": decision})

test_apr001_a_later_rejection_or_withdrawal_takes_an_approval_back if {
	ev := with_approvals([
		bob, dave,
		entry("Bob@Example.com", "rejected", "2026-11-13T09:00:00Z"),
		entry("dave@example.com", "withdrawn", "2026-11-12T08:45:00Z"), # same time: the withdrawal wins
	])
	"APR-001" in deny_ids(ev)
	[r] := denials(ev, "APR-001")
	contains(r.message, "found 0 (none)")
}

test_apr001_an_earlier_rejection_is_overruled_by_a_later_approval if {
	ev := with_approvals([entry("bob@example.com", "rejected", "2026-11-01T00:00:00Z"), bob])
	not "APR-001" in deny_ids(ev)
}

test_apr001_a_rejection_without_a_valid_time_takes_back_every_approval_of_its_reviewer if {
	every at in [null, "soon"] {
		ev := with_approvals([bob, object.union(entry("bob@example.com", "rejected", at), {})])
		"APR-001" in deny_ids(ev)
	}
}

test_apr001_a_rejection_by_someone_else_or_for_another_stage_changes_nothing if {
	other_stage := object.union(entry("bob@example.com", "rejected", "2026-11-20T00:00:00Z"), {"stage": "staging"})
	ev := with_approvals([bob, entry("erin@example.com", "rejected", "2026-11-20T00:00:00Z"), other_stage])
	not "APR-001" in deny_ids(ev)
}

test_apr003_an_undated_approval_taken_back_is_not_reported_stale if {
	undated := object.remove(bob, ["at"])
	ev := with_approvals([undated, dave, entry("bob@example.com", "withdrawn", "2026-11-13T09:00:00Z")])
	not "APR-003" in deny_ids(ev)
	"APR-003" in deny_ids(with_approvals([undated, dave]))
}

test_apr001_missing_decision_counts_as_approved if {
	ev := with_approvals([object.remove(bob, ["decision"])])
	not "APR-001" in deny_ids(ev)
}

test_apr001_high_risk_needs_two if {
	"APR-001" in deny_ids(high_risk(with_approvals([bob])))
	not "APR-001" in deny_ids(high_risk(compliant))
	[r] := denials(high_risk(with_approvals([bob])), "APR-001")
	contains(r.message, `needs 2 independent, fresh approval(s) for production; found 1 ("bob@example.com")`)
}

test_apr001_low_risk_needs_one if {
	ev := with_value("/ownership/risk_tier", "low")
	"APR-001" in deny_ids(json.patch(ev, [{"op": "add", "path": "/approvals", "value": []}]))
	not "APR-001" in deny_ids(ev)
}

test_apr001_unknown_tier_uses_stage_maximum if {
	ev := with_value("/ownership/risk_tier", "critical")
	deny_ids(json.patch(ev, [{"op": "add", "path": "/approvals", "value": [bob]}])) == {"APR-001", "OWN-002"}
	not "APR-001" in deny_ids(ev)
	[r] := denials(json.patch(ev, [{"op": "add", "path": "/approvals", "value": [bob]}]), "APR-001")
	contains(r.message, "unknown risk tier")
}

test_apr001_missing_tier_uses_stage_maximum if {
	ev := patched([
		{"op": "remove", "path": "/ownership/risk_tier"},
		{"op": "add", "path": "/approvals", "value": [bob]},
	])
	"APR-001" in deny_ids(ev)
}

test_apr001_staging_needs_none if {
	ev := patched([
		{"op": "add", "path": "/request/target/stage", "value": "staging"},
		{"op": "add", "path": "/approvals", "value": []},
	])
	deny_ids(ev) == set()
}

test_apr001_unknown_stage_uses_overall_maximum if {
	ev := with_value("/request/target/stage", "canary")
	"APR-001" in deny_ids(ev)
	[r] := denials(ev, "APR-001")
	contains(r.message, "needs 2")
	"APR-001" in deny_ids(without("/request"))
}

test_apr001_unknown_stage_and_no_parameters_needs_nothing if {
	ids := deny_ids(with_value("/request/target/stage", "canary")) with data.policygate_test.changed_params as {"required_approvals": {"production": {}}}
	not "APR-001" in ids
}

test_apr001_stage_with_empty_requirements_uses_overall_maximum if {
	ids := deny_ids(with_approvals([bob])) with data.policygate_test.changed_params as {"required_approvals": {"production": {}, "staging": {"low": 2}}}
	"APR-001" in ids
}

test_apr001_same_approver_counts_once if {
	ev := high_risk(with_approvals([bob, approval("BOB@example.com", "production", "2026-11-11T10:00:00Z")]))
	[r] := denials(ev, "APR-001")
	contains(r.message, "found 1")
}

test_apr001_non_independent_approvals_do_not_count if {
	ev := with_approvals([approval("alice@example.com", "production", "2026-11-10T15:20:00Z")])
	deny_ids(ev) == {"APR-001", "APR-002"}
}

test_apr001_stale_approvals_do_not_count if {
	ev := with_approvals([approval("bob@example.com", "production", "2026-10-01T00:00:00Z")])
	deny_ids(ev) == {"APR-001", "APR-003"}
}

test_apr001_blank_approver_does_not_count if {
	"APR-001" in deny_ids(with_approvals([object.union(bob, {"by": " "})]))
	"APR-001" in deny_ids(with_approvals([object.remove(bob, ["by"])]))
}

test_apr001_non_object_approvals_ignored if {
	deny_ids(with_approvals(["bob@example.com"])) == {"APR-001"}
	deny_ids(with_value("/approvals", "bob@example.com")) == {"APR-001"}
}

test_apr001_verified_required if {
	ids := deny_ids(compliant) with data.policygate_test.changed_params as {"require_verified_approvals": true}
	"APR-001" in ids
	[r] := denials(compliant, "APR-001") with data.policygate_test.changed_params as {"require_verified_approvals": true}
	contains(r.message, "fresh verified approval(s)")
	ids2 := deny_ids(with_approvals([object.union(bob, {"verified": true})])) with data.policygate_test.changed_params as {"require_verified_approvals": true}
	not "APR-001" in ids2
}

# APR-002 ---------------------------------------------------------------------

test_apr002_passes_with_independent_approvers if not "APR-002" in deny_ids(compliant)

test_apr002_fails_for_owner_case_insensitively if {
	ev := with_approvals([bob, approval("Alice@Example.COM", "production", "2026-11-10T15:20:00Z")])
	deny_ids(ev) == {"APR-002"}
	[r] := denials(ev, "APR-002")
	contains(r.message, `"Alice@Example.COM" is also the model's owner and run author`)
}

test_apr002_fails_for_run_author if {
	ev := patched([
		{"op": "add", "path": "/lineage/run/user", "value": "dave@example.com"},
	])
	deny_ids(ev) == {"APR-002"}
	[r] := denials(ev, "APR-002")
	contains(r.message, "model's run author")
}

test_apr002_fails_for_requester if {
	ev := with_value("/request/requested_by", " DAVE@example.com")
	deny_ids(ev) == {"APR-002"}
	[r] := denials(ev, "APR-002")
	contains(r.message, "model's requester")
}

test_apr002_fails_for_the_authenticated_caller if {
	# a token named for dave asks (also on someone else's behalf): dave's approval does not count
	every caller in ["token:dave@example.com", "oidc:Dave@Example.com"] {
		ev := with_value("/request/caller", caller)
		deny_ids(ev) == {"APR-002"}
		[r] := denials(ev, "APR-002")
		contains(r.message, "model's requester")
	}
}

test_apr002_anonymous_or_odd_callers_are_nobody if {
	every caller in ["anonymous", "token:", "dave@example.com", 7] {
		not "APR-002" in deny_ids(with_value("/request/caller", caller))
	}
}

test_apr002_ignores_rejections_and_other_stages if {
	ev := with_approvals([
		bob, dave,
		object.union(approval("alice@example.com", "production", "2026-11-10T15:20:00Z"), {"decision": "rejected"}),
		approval("alice@example.com", "staging", "2026-11-10T15:20:00Z"),
	])
	not "APR-002" in deny_ids(ev)
}

test_apr002_no_run_author_without_run if {
	ev := patched([
		{"op": "add", "path": "/lineage/run", "value": null},
		{"op": "add", "path": "/ownership/owner", "value": "erin@example.com"},
		{"op": "add", "path": "/approvals/-", "value": approval("alice@example.com", "production", "2026-11-10T15:20:00Z")},
		{"op": "remove", "path": "/identities"}, # no directory: erin and alice are not looked up (identity_test.rego)
	])
	deny_ids(ev) == {"LIN-001"}
}

# APR-003 ---------------------------------------------------------------------

test_apr003_passes_with_fresh_approvals if not "APR-003" in deny_ids(compliant)

test_apr003_fails_before_model_version if {
	ev := with_value("/approvals/1/at", "2026-10-25T10:00:00Z")
	deny_ids(ev) == {"APR-003"}
	[r] := denials(ev, "APR-003")
	contains(r.message, "predates the model version")
	contains(r.message, `"dave@example.com"`)
}

test_apr003_fails_when_older_than_max_age if {
	ev := patched([
		{"op": "add", "path": "/subject/created_at", "value": null},
		{"op": "add", "path": "/approvals/1/at", "value": "2026-08-22T11:59:59Z"},
	])
	deny_ids(ev) == {"APR-003"}
	[r] := denials(ev, "APR-003")
	contains(r.message, "is 90 days old, older than the 90-day limit")
}

test_apr003_boundary_is_fresh if {
	ev := patched([
		{"op": "add", "path": "/subject/created_at", "value": null},
		{"op": "add", "path": "/approvals/1/at", "value": "2026-08-22T12:00:00Z"},
	])
	deny_ids(ev) == set()
}

test_apr003_reads_max_age_parameter if {
	ids := deny_ids(compliant) with data.policygate_test.changed_params as {"max_approval_age_days": 9}
	ids == {"APR-003"}
}

test_apr003_fails_without_time if {
	ev := with_approvals([bob, object.remove(dave, ["at"])])
	deny_ids(ev) == {"APR-003"}
	[r] := denials(ev, "APR-003")
	contains(r.message, "has no valid approval time")
}

test_apr003_fails_for_unparseable_time if {
	every at in [null, "", "yesterday", "20/11/2026", 1763640000] {
		deny_ids(with_value("/approvals/1/at", at)) == {"APR-003"}
	}
}

test_apr003_accepts_iso_forms if {
	every at in ["2026-11-12T08:45:00+01:00", "2026-11-12T08:45:00.123456Z", "2026-11-12T08:45:00", "2026-11-12"] {
		deny_ids(with_value("/approvals/1/at", at)) == set()
	}
}

test_apr003_ignores_other_stages_and_rejections if {
	ev := with_approvals([
		bob,
		approval("dave@example.com", "staging", "2020-01-01T00:00:00Z"),
		object.union(dave, {"decision": "rejected", "at": "2020-01-01T00:00:00Z"}),
	])
	deny_ids(ev) == set()
}

test_apr003_uses_request_time_for_replay if {
	# Fresh at the recorded request time, however late the replay runs.
	ev := with_value("/request/requested_at", "2026-11-20T12:00:00+00:00")
	deny_ids(ev) == set()

	# Without a valid request time, the current time is the reference.
	old := patched([
		{"op": "add", "path": "/subject/created_at", "value": "2000-01-01T00:00:00Z"},
		{"op": "add", "path": "/approvals/1/at", "value": "2000-01-02T00:00:00Z"},
		{"op": "add", "path": "/request/requested_at", "value": "not a time"},
	])
	# (LIF-002 reads the same current time: the fixture's owner review ages too, so it is set aside)
	deny_ids(old) - {"LIF-002"} == {"APR-003"}
	deny_ids(json.patch(old, [{"op": "add", "path": "/request/requested_at", "value": "2000-01-03T00:00:00Z"}])) == set()
}
