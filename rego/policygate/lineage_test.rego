package policygate_test

# LIN-001 ---------------------------------------------------------------------

test_lin001_passes_with_run if not "LIN-001" in deny_ids(compliant)

test_lin001_fails_when_run_null if {
	deny_ids(with_value("/lineage/run", null)) == {"LIN-001"}
	[r] := denials(with_value("/lineage/run", null), "LIN-001")
	r.fields == ["lineage.run"]
	r.severity == "high"
	contains(r.message, "mlflow:models:/fraud-detector/7")
}

test_lin001_fails_when_run_missing if "LIN-001" in deny_ids(without("/lineage/run"))

test_lin001_fails_when_lineage_missing if "LIN-001" in deny_ids(without("/lineage"))

test_lin001_fails_when_run_not_an_object if "LIN-001" in deny_ids(with_value("/lineage/run", "run-123"))

# LIN-002 ---------------------------------------------------------------------

test_lin002_fails_when_run_failed if {
	ev := with_value("/lineage/run/status", "FAILED")
	deny_ids(ev) == {"LIN-002"}
	[r] := denials(ev, "LIN-002")
	contains(r.message, `"FAILED"`)
	contains(r.message, `"4f2a9c1e7b3d4e5f8a6b0c1d2e3f4a5b"`)
	r.fields == ["lineage.run.status"]
}

test_lin002_status_is_case_insensitive if {
	every status in ["finished", "FINISHED", "Completed", "COMPLETED", "succeeded", " Succeeded "] {
		not "LIN-002" in deny_ids(with_value("/lineage/run/status", status))
	}
}

test_lin002_fails_for_non_terminal_statuses if {
	every status in ["RUNNING", "Canceled", "KILLED", "", "Failed"] {
		"LIN-002" in deny_ids(with_value("/lineage/run/status", status))
	}
}

test_lin002_fails_when_status_missing if {
	"LIN-002" in deny_ids(without("/lineage/run/status"))
	[r] := denials(without("/lineage/run/status"), "LIN-002")
	contains(r.message, "status none")
}

test_lin002_fails_when_status_null if "LIN-002" in deny_ids(with_value("/lineage/run/status", null))

test_lin002_fails_when_status_not_a_string if "LIN-002" in deny_ids(with_value("/lineage/run/status", 0))

test_lin002_silent_without_run if not "LIN-002" in deny_ids(with_value("/lineage/run", null))

test_lin002_reads_the_parameter if {
	ids := deny_ids(compliant) with data.policygate_test.changed_params as {"successful_run_statuses": ["Completed"]}
	"LIN-002" in ids
}

# LIN-003 ---------------------------------------------------------------------

test_lin003_fails_without_datasets if {
	ev := with_value("/lineage/datasets", [])
	deny_ids(ev) == {"LIN-003"}
	[r] := denials(ev, "LIN-003")
	contains(r.message, "No training dataset")
}

test_lin003_fails_with_only_evaluation_data if {
	ev := with_value("/lineage/datasets/0/context", "evaluation")
	deny_ids(ev) == {"LIN-003"}
}

test_lin003_null_context_counts_as_training if not "LIN-003" in deny_ids(with_value("/lineage/datasets/0/context", null))

test_lin003_missing_context_counts_as_training if not "LIN-003" in deny_ids(without("/lineage/datasets/0/context"))

test_lin003_context_is_case_insensitive if not "LIN-003" in deny_ids(with_value("/lineage/datasets/0/context", "Training"))

test_lin003_fails_without_digest_or_version if {
	ev := with_value("/lineage/datasets/0/digest", null)
	deny_ids(ev) == {"LIN-003"}
	[r] := denials(ev, "LIN-003")
	contains(r.message, `"transactions-2026q3"`)
}

test_lin003_blank_digest_is_missing if "LIN-003" in deny_ids(with_value("/lineage/datasets/0/digest", " "))

test_lin003_version_is_enough if {
	ev := patched([
		{"op": "add", "path": "/lineage/datasets/0/digest", "value": null},
		{"op": "add", "path": "/lineage/datasets/0/version", "value": "3"},
	])
	not "LIN-003" in deny_ids(ev)
}

test_lin003_unpinned_validation_data_is_fine if {
	ev := with_value("/lineage/datasets/1", {"name": "holdout", "digest": null, "version": null, "source": null, "context": "validation"})
	not "LIN-003" in deny_ids(ev)
}

test_lin003_each_unpinned_training_dataset_reported if {
	ev := with_value("/lineage/datasets/1", {"name": "labels", "digest": null, "version": null, "source": null, "context": null})
	[r] := denials(ev, "LIN-003")
	contains(r.message, `"labels"`)
}

test_lin003_non_object_datasets_ignored if {
	ev := with_value("/lineage/datasets", ["s3://bucket/data.parquet"])
	"LIN-003" in deny_ids(ev)
}

# LIN-004 ---------------------------------------------------------------------

test_lin004_fails_when_commit_null if {
	ev := with_value("/lineage/code/commit", null)
	deny_ids(ev) == {"LIN-004"}
	[r] := denials(ev, "LIN-004")
	r.fields == ["lineage.code.commit"]
}

test_lin004_fails_when_commit_blank if {
	every commit in ["", "   "] {
		"LIN-004" in deny_ids(with_value("/lineage/code/commit", commit))
	}
}

test_lin004_fails_when_code_missing if "LIN-004" in deny_ids(without("/lineage/code"))

test_lin004_passes_with_commit if not "LIN-004" in deny_ids(compliant)
