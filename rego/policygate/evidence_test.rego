package policygate_test

failed_source := {
	"platform": "azureml", "endpoint": "https://management.azure.com",
	"ok": false, "required": true, "error": "403 Forbidden",
}

test_evd001_passes_with_complete_evidence if not "EVD-001" in deny_ids(compliant)

test_evd001_fails_for_failed_required_source if {
	ev := with_value("/collection/sources/-", failed_source)
	deny_ids(ev) == {"EVD-001"}
	[r] := denials(ev, "EVD-001")
	contains(r.message, `source "azureml" ("https://management.azure.com") could not be read: "403 Forbidden"`)
	r.fields == ["collection.sources"]
}

test_evd001_required_defaults_to_true if {
	"EVD-001" in deny_ids(with_value("/collection/sources/-", object.remove(failed_source, ["required"])))
	"EVD-001" in deny_ids(with_value("/collection/sources/-", object.union(failed_source, {"required": null})))
}

test_evd001_missing_ok_counts_as_failed if {
	"EVD-001" in deny_ids(with_value("/collection/sources/-", object.remove(failed_source, ["ok"])))
}

test_evd001_optional_source_may_fail if {
	not "EVD-001" in deny_ids(with_value("/collection/sources/-", object.union(failed_source, {"required": false})))
}

test_evd001_fails_for_required_gap if {
	every gap in shipped_params.required_fields {
		"EVD-001" in deny_ids(with_value("/collection/gaps", [gap]))
	}
	[r] := denials(with_value("/collection/gaps", ["subject.created_at"]), "EVD-001")
	contains(r.message, `Required evidence field "subject.created_at" is missing`)
	r.fields == ["collection.gaps", "subject.created_at"]
}

test_evd001_parent_gap_covers_required_fields if {
	"EVD-001" in deny_ids(with_value("/collection/gaps", ["subject"]))
	not "EVD-001" in deny_ids(with_value("/collection/gaps", ["subject.created"]))
}

test_evd001_ignores_optional_gaps if {
	ev := with_value("/collection/gaps", ["subject.created_by", "lineage.run.end", "deployment"])
	deny_ids(ev) == set()
}

test_evd001_reads_required_fields if {
	ids := deny_ids(with_value("/collection/gaps", ["subject.created_by"])) with data.policygate_test.changed_params as {"required_fields": ["subject.created_by"]}
	ids == {"EVD-001"}
}

test_evd001_fails_for_other_schema if {
	ev := with_value("/schema", "policygate.evidence/v2")
	deny_ids(ev) == {"EVD-001"}
	[r] := denials(ev, "EVD-001")
	r.fields == ["schema"]
	not "EVD-001" in deny_ids(without("/schema"))
}
