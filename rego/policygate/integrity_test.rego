package policygate_test

# INT-002 ---------------------------------------------------------------------

_digest_v1 := "sha256:1111111111111111111111111111111111111111111111111111111111111111"

_digest_v2 := "sha256:2222222222222222222222222222222222222222222222222222222222222222"

_with_artifacts(current, recorded) := with_value("/artifacts", {
	"digest": current,
	"files": [{"path": "model.pkl", "size": 3, "sha256": "ab"}],
	"size": 3,
	"recorded": recorded,
})

test_int002_passes_without_artifacts if not "INT-002" in deny_ids(compliant)

test_int002_passes_when_nothing_was_recorded if not "INT-002" in deny_ids(_with_artifacts(_digest_v1, []))

test_int002_passes_when_the_files_are_the_allowed_ones if {
	ev := _with_artifacts(_digest_v1, [{"digest": _digest_v1, "decision_id": "d-1"}])
	not "INT-002" in deny_ids(ev)
}

test_int002_fails_when_the_files_changed_after_an_allow if {
	ev := _with_artifacts(_digest_v2, [{"digest": _digest_v1, "decision_id": "d-1"}])
	deny_ids(ev) == {"INT-002"} with data.policygate_test.changed_params as {"modes": {"INT-001": "warn"}}
	[r] := denials(ev, "INT-002")
	r.severity == "critical"
	r.fields == ["artifacts.digest", "artifacts.recorded"]
	contains(r.message, _digest_v2)
	contains(r.message, `"d-1"`)
	contains(r.message, "after the allow decision")
}

test_int002_fails_when_the_files_changed_after_an_approval_recorded_them if {
	ev := _with_artifacts(_digest_v2, [{"digest": _digest_v1, "decision_id": "approval:a-1", "kind": "approval"}])
	[r] := denials(ev, "INT-002")
	contains(r.message, `after the approval "approval:a-1"`)
}

test_int002_fails_when_any_earlier_allow_saw_other_files if {
	ev := _with_artifacts(_digest_v2, [{"digest": _digest_v2, "decision_id": "d-2"}, {"digest": _digest_v1, "decision_id": "d-1"}])
	"INT-002" in deny_ids(ev)
}

test_int002_ignores_a_digest_that_is_not_a_string if {
	ev := _with_artifacts(7, [{"digest": _digest_v1, "decision_id": "d-1"}])
	not "INT-002" in deny_ids(ev)
}

# INT-001 ---------------------------------------------------------------------

_signed(status, signer) := with_value("/artifacts", {
	"digest": _digest_v1,
	"files": [{"path": "model.pkl", "size": 3, "sha256": "ab"}],
	"size": 3,
	"signature": {"status": status, "signer": signer},
	"recorded": [],
})

test_int001_in_warn_mode_is_a_warning if {
	ev := _signed("absent", null)
	not "INT-001" in deny_ids(ev) with data.policygate_test.changed_params as {"modes": {"INT-001": "warn"}}
	warned := {w.id | some w in data.policygate.decision.warn} with input as ev with data.policygate_params as pinned_params with data.policygate_test.changed_params as {"modes": {"INT-001": "warn"}}
	"INT-001" in warned
}

test_int001_fails_when_unsigned_in_production if {
	ev := _signed("absent", null)
	"INT-001" in deny_ids(ev) with data.policygate_test.changed_params as {"modes": {}}
}

test_int001_fails_for_a_signer_not_allowed if {
	ev := _signed("verified", "someone")
	ids := deny_ids(ev) with data.policygate_test.changed_params as {"modes": {}, "allowed_signers": ["ml-platform"]}
	"INT-001" in ids
}

test_int001_fails_for_an_invalid_signature if {
	ev := _signed("invalid", "ml-platform")
	ids := deny_ids(ev) with data.policygate_test.changed_params as {"modes": {}, "allowed_signers": ["ml-platform"]}
	"INT-001" in ids
}

test_int001_passes_for_an_allowed_signer if {
	ev := _signed("verified", "ml-platform")
	ids := deny_ids(ev) with data.policygate_test.changed_params as {"modes": {}, "allowed_signers": ["ml-platform"]}
	not "INT-001" in ids
}

test_int001_only_for_production if {
	ev := json.patch(_signed("absent", null), [{"op": "add", "path": "/request/target/stage", "value": "staging"}])
	not "INT-001" in deny_ids(ev) with data.policygate_test.changed_params as {"modes": {}}
}

test_int001_needs_the_files if not "INT-001" in deny_ids(compliant) with data.policygate_test.changed_params as {"modes": {}}

# INT-003 ---------------------------------------------------------------------

_unverified(reason, size) := patched([
	{"op": "add", "path": "/artifacts_unverified", "value": {
		"reason": reason, "detail": "the model's files are larger than 1073741824 bytes",
		"source": "models:/m-1", "size": size, "files": 3, "bytes_read": 0, "files_read": 0,
		"max_bytes": 1073741824, "timeout_s": 60,
	}},
	{"op": "add", "path": "/collection/gaps", "value": ["artifacts"]},
])

_at_stage(ev, stage) := json.patch(ev, [{"op": "add", "path": "/request/target/stage", "value": stage}])

_warn_ids(ev) := {w.id | some w in decide(ev).warn}

_dryrun_ids(ev) := {w.id | some w in decide(ev).dryrun}

test_int003_passes_when_the_files_were_hashed if {
	not "INT-003" in deny_ids(compliant)
	not "INT-003" in _warn_ids(compliant)
}

test_int003_denies_production_naming_why_and_how_much_was_read if {
	ev := _unverified("size_cap", 1610612736)
	deny_ids(ev) == {"INT-003"}
	[r] := denials(ev, "INT-003")
	r.severity == "high"
	r.title == "Model files not verified"
	contains(r.message, `"size_cap"`)
	contains(r.message, "1610612736 bytes listed in 3 file(s), 0 bytes read")
	contains(r.message, "cap of 1073741824 bytes and 60 s")
	decide(ev).allow == false
}

test_int003_warns_in_staging_and_development if {
	every stage in ["staging", "development"] {
		ev := _at_stage(_unverified("time_budget", 10), stage)
		not "INT-003" in deny_ids(ev)
		"INT-003" in _warn_ids(ev)
		decide(ev).allow == true
	}
}

test_int003_enforces_in_a_stage_not_listed if {
	ev := _at_stage(_unverified("store", null), "staging")
	"INT-003" in deny_ids(ev) with data.policygate_test.changed_params as {"unverified_files": {"production": "enforce"}}
}

test_int003_effect_is_a_parameter if {
	ev := _unverified("size_cap", 10)
	ids := deny_ids(ev) with data.policygate_test.changed_params as {"unverified_files": {"production": "warn"}}
	not "INT-003" in ids
	warned := _warn_ids(ev) with data.policygate_test.changed_params as {"unverified_files": {"production": "warn"}}
	"INT-003" in warned
	dry := _dryrun_ids(ev) with data.policygate_test.changed_params as {"unverified_files": {"production": "dryrun"}}
	"INT-003" in dry
}

test_int003_a_dryrun_mode_turns_the_warning_into_a_dry_run if {
	ev := _at_stage(_unverified("size_cap", 10), "staging")
	modes := {"INT-001": "warn", "INT-003": "dryrun"}
	not "INT-003" in _warn_ids(ev) with data.policygate_test.changed_params as {"modes": modes}
	"INT-003" in _dryrun_ids(ev) with data.policygate_test.changed_params as {"modes": modes}
}

test_int003_threshold_accepts_small_unverified_models_only if {
	small := _unverified("time_budget", 1000)
	not "INT-003" in deny_ids(small) with data.policygate_test.changed_params as {"max_unverified_bytes": 1000}
	"INT-003" in deny_ids(_unverified("time_budget", 1001)) with data.policygate_test.changed_params as {"max_unverified_bytes": 1000}
	"INT-003" in deny_ids(_unverified("store", null)) with data.policygate_test.changed_params as {"max_unverified_bytes": 1000}
}

test_int003_a_model_without_files_is_never_tolerated if {
	empty := json.patch(_unverified("store", 0), [{"op": "replace", "path": "/artifacts_unverified/files", "value": 0}])
	"INT-003" in deny_ids(empty)
	"INT-003" in deny_ids(empty) with data.policygate_test.changed_params as {"max_unverified_bytes": 1000}
}

test_int003_fires_on_an_artifacts_gap_that_does_not_say_why if {
	ev := with_value("/collection/gaps", ["artifacts"])
	[r] := denials(ev, "INT-003")
	contains(r.message, "does not say why")
}

test_int003_in_enforce_stage_can_be_waived_like_any_rule if {
	ev := _unverified("size_cap", 10)
	waiver := {
		"id": "W-1", "rule": "INT-003", "model": "mlflow:models:/fraud-detector/7",
		"expires": "2099-01-01T00:00:00Z", "approved_by": "ciso", "reason": "accepted",
	}
	not "INT-003" in deny_ids(ev) with data.policygate_waivers as [waiver]
}
