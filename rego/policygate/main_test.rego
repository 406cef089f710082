package policygate_test

failed_run := with_value("/lineage/run/status", "FAILED")

waiver(overrides) := object.union(
	{
		"id": "WVR-7",
		"rule": "LIN-002",
		"model": "mlflow:models:/fraud-detector/7",
		"targets": ["production"],
		"reason": "rerun pending; metrics verified manually",
		"approved_by": "ciso@example.com",
		"expires": "2026-12-31T00:00:00Z",
	},
	overrides,
)

waived_ids(ev, waivers) := ids if {
	ids := {r.id | some r in decide(ev).deny} with data.policygate_waivers as waivers
}

# decision shape ----------------------------------------------------------------

test_decision_defined_for_empty_input if {
	d := decide({})
	d.allow == false
	{r.id | some r in d.deny} == {"APR-001", "LIN-001", "LIN-003", "LIN-004", "OWN-001", "OWN-002"}
	d.warn == []
	d.dryrun == []
}

test_decision_defined_for_malformed_input if {
	every ev in [
		{"approvals": "bob", "lineage": {"run": "r1", "datasets": 5, "code": "x"}, "ownership": []},
		{"request": {"target": {"stage": 7}, "requested_at": 12}, "subject": {"ref": 3, "created_at": false}},
		{"deployment": {"identity": {"role_assignments": [1, "Owner", null]}, "endpoint": "e"}},
		{"collection": {"sources": [null, 1], "gaps": [1, null], "conflicts": [{"field": "ownership.owner", "values": "x"}]}},
		{"approvals": [{"by": 1, "stage": "production", "at": {}}], "request": {"target": {"stage": "production"}}},
	] {
		d := decide(ev)
		d.allow == false
		count(d.deny) > 0
	}
}

test_decision_defined_for_non_object_input if {
	every ev in [null, "evidence", 5, [], [compliant], true] {
		d := decide(ev)
		d.allow == false
		{r.id | some r in d.deny} == {"APR-001", "LIN-001", "LIN-003", "LIN-004", "OWN-001", "OWN-002"}
	}
}

test_decision_defined_without_input if {
	d := data.policygate.decision with data.policygate_params as pinned_params
	d.allow == false
	count(d.deny) == 7
}

test_decision_for_compliant_evidence if {
	decide(compliant) == {"allow": true, "deny": [], "warn": [], "dryrun": [], "errors": []}
}

test_deny_is_ordered_by_rule_id if {
	ids := [r.id | some r in decide({}).deny]
	ids == sort(ids)
}

test_reason_carries_annotation if {
	[r] := denials(failed_run, "LIN-002")
	object.keys(r) == {"id", "title", "severity", "controls", "message", "fields"}
	r.title == "Training run did not finish successfully"
	r.severity == "high"
	"NIST AI RMF MEASURE 2.1" in r.controls
}

all_rule_ids := {
	"LIN-001", "LIN-002", "LIN-003", "LIN-004", "OWN-001", "OWN-002", "OWN-003",
	"APR-001", "APR-002", "APR-003", "ACC-001", "ACC-002", "ACC-003", "ACC-004", "EVD-001",
}

# Evidence that breaks every rule but LIN-001 (which excludes LIN-002).
everything_wrong := patched([
	{"op": "add", "path": "/lineage/run/status", "value": "FAILED"},
	{"op": "add", "path": "/lineage/datasets", "value": []},
	{"op": "add", "path": "/lineage/code/commit", "value": ""},
	{"op": "add", "path": "/ownership/owner", "value": null},
	{"op": "add", "path": "/ownership/risk_tier", "value": "high"},
	{"op": "add", "path": "/ownership/use_case", "value": null},
	{"op": "add", "path": "/collection/conflicts", "value": [{"field": "ownership.owner", "values": {"mlflow": "a", "azureml": "b"}}]},
	{"op": "add", "path": "/approvals", "value": [
		{"by": "carol@example.com", "stage": "production", "at": "2026-11-10T00:00:00Z"},
		{"by": "bob@example.com", "stage": "production", "at": "2025-01-01T00:00:00Z"},
	]},
	{"op": "add", "path": "/deployment/identity/role_assignments", "value": [{"role": "Owner", "scope": "/"}]},
	{"op": "add", "path": "/deployment/endpoint/auth_mode", "value": "key"},
	{"op": "add", "path": "/deployment/endpoint/public_network_access", "value": "enabled"},
	{"op": "add", "path": "/collection/gaps", "value": ["approvals"]},
])

test_every_rule_reports_with_its_annotation if {
	reasons := array.concat(decide(everything_wrong).deny, decide({}).deny)
	{r.id | some r in reasons} == all_rule_ids
	every r in reasons {
		r.severity in {"high", "medium", "low"}
		count(r.controls) > 0
		r.title != ""
		count(r.fields) > 0
		contains(r.message, ".")
	}
}

test_missing_parameters_are_a_policy_error_never_allow if {
	d := decide(compliant) with data.policygate_test.pinned_params as null
	d.allow == false
	count(d.errors) == 1
	contains(d.errors[0], "data.policygate_params is missing")
}

test_rule_without_metadata_is_a_policy_error if {
	d := decide(compliant) with data.policygate.violation as {data.policygate.reason({}, "Something is wrong.", [])}
	d.allow == false
	count(d.deny) == 1
	[e] := d.errors
	contains(e, "no rule id")
}

test_rule_without_controls_is_a_policy_error if {
	meta := {"title": "T", "custom": {"id": "XYZ-001", "severity": "high"}}
	d := decide(compliant) with data.policygate.violation as {data.policygate.reason(meta, "Something is wrong.", [])}
	d.allow == false
	[e] := d.errors
	contains(e, "no controls")
}

test_rule_with_unknown_severity_is_a_policy_error if {
	meta := {"title": "T", "custom": {"id": "XYZ-001", "severity": "urgent", "controls": ["C"]}}
	d := decide(compliant) with data.policygate.violation as {data.policygate.reason(meta, "Something is wrong.", [])}
	[e] := d.errors
	contains(e, "no valid severity")
}

test_every_malformed_reason_is_named if {
	full := {"id": "XYZ-001", "title": "T", "severity": "low", "controls": ["C"], "message": "M."}
	problems := {p |
		some r in ["not a reason", object.remove(full, ["title"]), object.remove(full, ["message"])]
		some e in decide(compliant).errors with data.policygate.violation as {r}
		some p in ["not an object", "no title", "no message"]
		contains(e, p)
	}
	problems == {"not an object", "no title", "no message"}
	decide(compliant).errors == [] with data.policygate.violation as {full}
}

test_well_formed_decision_has_no_errors if {
	decide(compliant).errors == []
	decide(everything_wrong).errors == []
}

# modes -------------------------------------------------------------------------

test_mode_warn_moves_reason_to_warn if {
	d := decide(failed_run) with data.policygate_test.changed_params as {"modes": {"LIN-002": "warn"}}
	d.allow == true
	d.deny == []
	[r] := d.warn
	r.id == "LIN-002"
	not r.waiver
	d.dryrun == []
}

test_mode_dryrun_only_reports if {
	d := decide(failed_run) with data.policygate_test.changed_params as {"modes": {"LIN-002": "DryRun"}}
	d.allow == true
	d.deny == []
	d.warn == []
	[r] := d.dryrun
	r.id == "LIN-002"
}

test_mode_applies_per_rule if {
	ev := json.patch(failed_run, [{"op": "add", "path": "/lineage/code/commit", "value": null}])
	d := decide(ev) with data.policygate_test.changed_params as {"modes": {"LIN-002": "dryrun"}}
	{r.id | some r in d.deny} == {"LIN-004"}
	d.allow == false
}

test_mode_enforce_and_unknown_modes_enforce if {
	every mode in ["enforce", "off", "disabled", "", 1, null] {
		deny_ids(failed_run) == {"LIN-002"} with data.policygate_test.changed_params as {"modes": {"LIN-002": mode}}
	}
}

# waivers -----------------------------------------------------------------------

test_waiver_turns_deny_into_warn if {
	d := decide(failed_run) with data.policygate_waivers as [waiver({})]
	d.allow == true
	d.deny == []
	[r] := d.warn
	r.id == "LIN-002"
	r.waiver == "WVR-7"
	contains(r.message, `Waived by WVR-7 (approved by "ciso@example.com", expires "2026-12-31T00:00:00Z"): "rerun pending; metrics verified manually"`)
	startswith(r.message, "Training run")
}

test_waiver_without_waivers_data if {
	deny_ids(failed_run) == {"LIN-002"}
	deny_ids(failed_run) == {"LIN-002"} with data.policygate_waivers as []
	deny_ids(failed_run) == {"LIN-002"} with data.policygate_waivers as "none"
	deny_ids(failed_run) == {"LIN-002"} with data.policygate_waivers as ["WVR-7", 3, null]
}

test_waiver_as_object_of_waivers if {
	waived_ids(failed_run, {"WVR-7": waiver({})}) == set()
}

test_waiver_glob_pattern_matches if {
	every pattern in ["mlflow:models:/fraud-detector/*", "mlflow:models:/fraud-*", "mlflow:*", "*"] {
		waived_ids(failed_run, [waiver({"model": pattern})]) == set()
	}
}

test_waiver_for_other_model_does_not_apply if {
	every pattern in ["mlflow:models:/fraud-detector/8", "mlflow:models:/churn/*", "azureml:*", "mlflow:models:/fraud-detector/[", ""] {
		waived_ids(failed_run, [waiver({"model": pattern})]) == {"LIN-002"}
	}
	waived_ids(failed_run, [object.remove(waiver({}), ["model"])]) == {"LIN-002"}
}

test_waiver_for_other_rule_does_not_apply if {
	waived_ids(failed_run, [waiver({"rule": "LIN-001"})]) == {"LIN-002"}
	waived_ids(failed_run, [waiver({"rule": " lin-002 "})]) == set()
}

test_waiver_expired_does_not_apply if {
	# Expired before the request time, even if a replay runs earlier.
	waived_ids(failed_run, [waiver({"expires": "2026-11-20T11:59:59Z"})]) == {"LIN-002"}
	waived_ids(failed_run, [waiver({"expires": "2026-11-20T12:00:00Z"})]) == {"LIN-002"}
	waived_ids(failed_run, [waiver({"expires": "2026-11-20T12:00:01Z"})]) == set()
}

test_waiver_expiry_uses_now_without_request_time if {
	ev := json.patch(failed_run, [{"op": "remove", "path": "/request/requested_at"}])
	waived_ids(ev, [waiver({"expires": "2001-01-01T00:00:00Z"})]) == {"LIN-002"}
	waived_ids(ev, [waiver({"expires": "2200-01-01T00:00:00Z"})]) == set()
}

test_waiver_without_valid_expiry_never_applies if {
	waived_ids(failed_run, [object.remove(waiver({}), ["expires"])]) == {"LIN-002"}

	# Past 2262 the time does not fit int64 nanoseconds: no "eternal" waivers.
	every expires in [null, "", "2026-12-31", "next year", 4102444800, "9999-12-31T23:59:59Z"] {
		waived_ids(failed_run, [waiver({"expires": expires})]) == {"LIN-002"}
	}
}

test_waiver_targets if {
	waived_ids(failed_run, [waiver({"targets": []})]) == set()
	waived_ids(failed_run, [object.remove(waiver({}), ["targets"])]) == set()
	waived_ids(failed_run, [waiver({"targets": null})]) == set()
	waived_ids(failed_run, [waiver({"targets": ["staging", "Production"]})]) == set()
	waived_ids(failed_run, [waiver({"targets": ["staging"]})]) == {"LIN-002"}
	waived_ids(failed_run, [waiver({"targets": "staging"})]) == {"LIN-002"}
}

test_waiver_lowest_id_wins if {
	d := decide(failed_run) with data.policygate_waivers as [waiver({"id": "WVR-9"}), waiver({"id": "WVR-3"}), waiver({"id": "WVR-5", "expires": "2000-01-01T00:00:00Z"})]
	[r] := d.warn
	r.waiver == "WVR-3"
}

test_waiver_without_id if {
	d := decide(failed_run) with data.policygate_waivers as [object.remove(waiver({}), ["id", "approved_by", "reason"])]
	[r] := d.warn
	r.waiver == "unnamed"
	contains(r.message, "Waived by unnamed (approved by none, expires")
}

test_waiver_only_covers_its_rule if {
	ev := json.patch(failed_run, [{"op": "add", "path": "/lineage/code/commit", "value": null}])
	d := decide(ev) with data.policygate_waivers as [waiver({})]
	{r.id | some r in d.deny} == {"LIN-004"}
	{r.id | some r in d.warn} == {"LIN-002"}
	d.allow == false
}

test_waiver_does_not_touch_warn_or_dryrun_modes if {
	d := decide(failed_run) with data.policygate_waivers as [waiver({})]
		with data.policygate_test.changed_params as {"modes": {"LIN-002": "dryrun"}}
	d.warn == []
	[r] := d.dryrun
	not r.waiver

	d2 := decide(failed_run) with data.policygate_waivers as [waiver({})]
		with data.policygate_test.changed_params as {"modes": {"LIN-002": "warn"}}
	[r2] := d2.warn
	not r2.waiver
}
