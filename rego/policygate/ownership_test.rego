package policygate_test

# OWN-001 ---------------------------------------------------------------------

test_own001_passes_with_owner if not "OWN-001" in deny_ids(compliant)

test_own001_fails_when_owner_null if {
	ev := with_value("/ownership/owner", null)
	deny_ids(ev) == {"OWN-001"}
	[r] := denials(ev, "OWN-001")
	r.fields == ["ownership.owner"]
	r.title == "No accountable owner"
}

test_own001_fails_when_owner_blank if "OWN-001" in deny_ids(with_value("/ownership/owner", "  "))

test_own001_fails_when_ownership_missing if "OWN-001" in deny_ids(without("/ownership"))

# OWN-002 ---------------------------------------------------------------------

test_own002_fails_for_unknown_tier if {
	ev := with_value("/ownership/risk_tier", "critical")
	deny_ids(ev) == {"OWN-002"}
	[r] := denials(ev, "OWN-002")
	r.fields == ["ownership.risk_tier"]
	contains(r.message, `"critical"`)
	contains(r.message, `"high", "low", "medium"`)
}

test_own002_fails_when_tier_missing if "OWN-002" in deny_ids(with_value("/ownership/risk_tier", null))

test_own002_tier_is_case_insensitive if {
	every tier in ["low", "Medium", "HIGH"] {
		not "OWN-002" in deny_ids(with_value("/ownership/risk_tier", tier))
	}
}

test_own002_fails_without_use_case if {
	ev := with_value("/ownership/use_case", null)
	deny_ids(ev) == {"OWN-002"}
	[r] := denials(ev, "OWN-002")
	r.fields == ["ownership.use_case"]
}

test_own002_reports_tier_and_use_case_separately if {
	ev := patched([
		{"op": "add", "path": "/ownership/use_case", "value": ""},
		{"op": "add", "path": "/ownership/risk_tier", "value": "extreme"},
	])
	count(denials(ev, "OWN-002")) == 2
}

# OWN-003 ---------------------------------------------------------------------

test_own003_fails_on_owner_conflict if {
	ev := with_value("/collection/conflicts", [{"field": "ownership.owner", "values": {"mlflow": "alice@example.com", "azureml": "erin@example.com"}}])
	deny_ids(ev) == {"OWN-003"}
	[r] := denials(ev, "OWN-003")
	contains(r.message, `"azureml" says "erin@example.com"`)
	contains(r.message, `"mlflow" says "alice@example.com"`)
	r.fields == ["collection.conflicts", "ownership.owner"]
}

test_own003_ignores_other_conflicts if {
	ev := with_value("/collection/conflicts", [{"field": "ownership.team", "values": {"mlflow": "a", "azureml": "b"}}])
	not "OWN-003" in deny_ids(ev)
}

test_own003_passes_without_conflicts if not "OWN-003" in deny_ids(compliant)
