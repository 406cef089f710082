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
	deny_ids(ev) == {"INT-002"} with data.policygate_params.modes as {"INT-001": "warn"}
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
	not "INT-001" in deny_ids(ev) with data.policygate_params.modes as {"INT-001": "warn"}
	warned := {w.id | some w in data.policygate.decision.warn} with input as ev with data.policygate_params.modes as {"INT-001": "warn"}
	"INT-001" in warned
}

test_int001_fails_when_unsigned_in_production if {
	ev := _signed("absent", null)
	"INT-001" in deny_ids(ev) with data.policygate_params.modes as {}
}

test_int001_fails_for_a_signer_not_allowed if {
	ev := _signed("verified", "someone")
	ids := deny_ids(ev) with data.policygate_params.modes as {} with data.policygate_params.allowed_signers as ["ml-platform"]
	"INT-001" in ids
}

test_int001_fails_for_an_invalid_signature if {
	ev := _signed("invalid", "ml-platform")
	ids := deny_ids(ev) with data.policygate_params.modes as {} with data.policygate_params.allowed_signers as ["ml-platform"]
	"INT-001" in ids
}

test_int001_passes_for_an_allowed_signer if {
	ev := _signed("verified", "ml-platform")
	ids := deny_ids(ev) with data.policygate_params.modes as {} with data.policygate_params.allowed_signers as ["ml-platform"]
	not "INT-001" in ids
}

test_int001_only_for_production if {
	ev := json.patch(_signed("absent", null), [{"op": "add", "path": "/request/target/stage", "value": "staging"}])
	not "INT-001" in deny_ids(ev) with data.policygate_params.modes as {}
}

test_int001_needs_the_files if not "INT-001" in deny_ids(compliant) with data.policygate_params.modes as {}
