package policygate_test

rg_scope := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-fraud-prod"

with_roles(assignments) := with_value("/deployment/identity/role_assignments", assignments)

role(name, scope) := {"role": name, "scope": scope, "principal_id": "3c9e1f52-7a4b-4d8e-9f01-2b6c5d8e7a10"}

acc_ids(ev) := {id | some id in deny_ids(ev); startswith(id, "ACC-")}

test_acc_rules_silent_without_deployment if {
	acc_ids(with_value("/deployment", null)) == set()
	acc_ids(without("/deployment")) == set()
	acc_ids(with_value("/deployment", {"endpoint": null, "identity": null})) == set()
}

# ACC-001 ---------------------------------------------------------------------

test_acc001_passes_with_least_privilege_role if not "ACC-001" in deny_ids(compliant)

test_acc001_fails_for_privileged_role if {
	ev := with_roles([role("Contributor", rg_scope)])
	deny_ids(ev) == {"ACC-001"}
	[r] := denials(ev, "ACC-001")
	contains(r.message, `privileged role "Contributor" at scope "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-fraud-prod"`)
	contains(r.message, `"user_assigned" identity "3c9e1f52-7a4b-4d8e-9f01-2b6c5d8e7a10"`)
	r.fields == ["deployment.identity.role_assignments"]
	"OWASP ML Top 10 ML06" in r.controls
}

test_acc001_role_is_case_insensitive if {
	every name in ["owner", "USER ACCESS ADMINISTRATOR", "Role Based Access Control Administrator"] {
		"ACC-001" in deny_ids(with_roles([role(name, rg_scope)]))
	}
}

test_acc001_reports_each_privileged_role if {
	ev := with_roles([role("AzureML Data Scientist", rg_scope), role("Owner", rg_scope), role("Contributor", rg_scope)])
	count(denials(ev, "ACC-001")) == 2
}

test_acc001_reads_the_parameter if {
	ids := deny_ids(compliant) with data.policygate_test.changed_params as {"privileged_roles": ["AzureML Data Scientist"]}
	"ACC-001" in ids
}

test_acc001_ignores_malformed_assignments if {
	acc_ids(with_roles(["Owner", 7])) == set()
	acc_ids(with_value("/deployment/identity", "Owner")) == set()
}

# ACC-002 ---------------------------------------------------------------------

test_acc002_passes_at_resource_group_or_narrower if {
	every scope in [
		rg_scope,
		"/subscriptions/0000/resourcegroups/rg-fraud-prod",
		"/SUBSCRIPTIONS/0000/RESOURCEGROUPS/rg/providers/Microsoft.MachineLearningServices/workspaces/ws",
	] {
		not "ACC-002" in deny_ids(with_roles([role("AzureML Data Scientist", scope)]))
	}
}

test_acc002_fails_for_broad_scopes if {
	every scope in [
		"/subscriptions/00000000-0000-0000-0000-000000000000",
		"/subscriptions/00000000-0000-0000-0000-000000000000/",
		"/subscriptions/0000/resourceGroups/",
		"/providers/Microsoft.Management/managementGroups/contoso",
		"/",
		"",
	] {
		deny_ids(with_roles([role("AzureML Data Scientist", scope)])) == {"ACC-002"}
	}
}

test_acc002_fails_when_scope_missing if {
	ev := with_roles([{"role": "AzureML Data Scientist"}])
	deny_ids(ev) == {"ACC-002"}
	[r] := denials(ev, "ACC-002")
	contains(r.message, "at scope none")
}

test_acc002_message_names_role_and_scope if {
	[r] := denials(with_roles([role("Reader", "/subscriptions/abc")]), "ACC-002")
	contains(r.message, `role "Reader" at scope "/subscriptions/abc"`)
}

test_acc001_and_acc002_together if {
	deny_ids(with_roles([role("Owner", "/")])) == {"ACC-001", "ACC-002"}
}

# ACC-003 ---------------------------------------------------------------------

test_acc003_passes_with_entra_tokens if not "ACC-003" in deny_ids(compliant)

test_acc003_fails_for_key_auth_in_production if {
	every mode in ["key", "aml_token", "Key"] {
		deny_ids(with_value("/deployment/endpoint/auth_mode", mode)) == {"ACC-003"}
	}
	[r] := denials(with_value("/deployment/endpoint/auth_mode", "key"), "ACC-003")
	contains(r.message, `Endpoint "fraud-detector-prod" uses auth mode "key"`)
	contains(r.message, `"aad_token"`)
}

test_acc003_auth_mode_is_case_insensitive if not "ACC-003" in deny_ids(with_value("/deployment/endpoint/auth_mode", "AAD_Token"))

test_acc003_fails_when_auth_mode_unknown if {
	"ACC-003" in deny_ids(with_value("/deployment/endpoint/auth_mode", null))
	"ACC-003" in deny_ids(without("/deployment/endpoint/auth_mode"))
}

test_acc003_only_for_production if {
	ev := patched([
		{"op": "add", "path": "/request/target/stage", "value": "staging"},
		{"op": "add", "path": "/deployment/endpoint/auth_mode", "value": "key"},
	])
	deny_ids(ev) == set()
}

test_acc003_silent_without_endpoint if not "ACC-003" in deny_ids(with_value("/deployment/endpoint", null))

# ACC-004 ---------------------------------------------------------------------

test_acc004_fails_for_public_high_risk_endpoint if {
	ev := patched([
		{"op": "add", "path": "/ownership/risk_tier", "value": "High"},
		{"op": "add", "path": "/deployment/endpoint/public_network_access", "value": "Enabled"},
	])
	deny_ids(ev) == {"ACC-004"}
	[r] := denials(ev, "ACC-004")
	contains(r.message, `Endpoint "fraud-detector-prod" serves a high-risk model with public network access "Enabled"`)
	r.fields == ["deployment.endpoint.public_network_access", "ownership.risk_tier"]
}

test_acc004_passes_for_medium_risk if not "ACC-004" in deny_ids(with_value("/deployment/endpoint/public_network_access", "enabled"))

test_acc004_passes_when_disabled_or_unknown if {
	every pna in ["disabled", null] {
		ev := patched([
			{"op": "add", "path": "/ownership/risk_tier", "value": "high"},
			{"op": "add", "path": "/deployment/endpoint/public_network_access", "value": pna},
		])
		not "ACC-004" in deny_ids(ev)
	}
}
