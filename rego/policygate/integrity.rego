package policygate

# Integrity: the files behind a model version are the files that were decided on.

# METADATA
# title: Model artifacts changed after they were allowed
# description: >-
#   The model version's files, hashed when the evidence was collected
#   (artifacts.digest), differ from the manifest digest an earlier allow
#   decision, or an approval recorded through policygate, of the same version
#   recorded (artifacts.recorded): the files behind the version were replaced
#   after they were decided on.
# custom:
#   id: INT-002
#   severity: critical
#   controls:
#     - NIST CSF 2.0 PR.DS-01
#     - NIST AI RMF MANAGE 2.4
#     - OWASP ML Top 10 ML10
#     - ISO/IEC 42001 A.6.2.6
violation contains reason(rego.metadata.rule(), msg, ["artifacts.digest", "artifacts.recorded"]) if {
	current := ev(["artifacts", "digest"])
	is_string(current)
	some earlier in object.get(object.get(input, "artifacts", {}), "recorded", [])
	earlier.digest != current
	msg := sprintf(
		"The files of model version %s changed after %s %s: their manifest digest is now %s, it was %s. Register the new files as a new version, or restore the approved ones.",
		[subject_label, _recorded_by(earlier), show(object.get(earlier, "decision_id", null)), current, show(object.get(earlier, "digest", null))],
	)
}

_recorded_by(earlier) := "the approval" if object.get(earlier, "kind", "decision") == "approval"

else := "the allow decision"

# METADATA
# title: Production model not signed by an allowed signer
# description: >-
#   The model version's files were read (artifacts is present) for a
#   production promotion, but they do not carry an OpenSSF model-signing
#   signature that verified (artifacts.signature.status) from a signer listed
#   in allowed_signers. Shipped in warn mode (modes) until signing is rolled out.
# custom:
#   id: INT-001
#   severity: high
#   controls:
#     - NIST CSF 2.0 PR.DS-08
#     - NIST AI RMF MANAGE 2.4
#     - OWASP ML Top 10 ML06
#     - ISO/IEC 42001 A.6.2.6
violation contains reason(rego.metadata.rule(), msg, ["artifacts.signature.status", "artifacts.signature.signer"]) if {
	lower_str(ev(["request", "target", "stage"])) == "production"
	is_object(ev(["artifacts"]))
	not _allowed_signature
	msg := sprintf(
		"The files of model version %s carry no signature from an allowed signer (signature %s, signer %s; allowed: %s). Sign the model with OpenSSF model signing using an allowed key.",
		[
			subject_label,
			show(ev(["artifacts", "signature", "status"])),
			show(ev(["artifacts", "signature", "signer"])),
			show_list(_allowed_signers),
		],
	)
}

_allowed_signature if {
	ev(["artifacts", "signature", "status"]) == "verified"
	ev(["artifacts", "signature", "signer"]) in _allowed_signers
}

_allowed_signers := object.get(params, "allowed_signers", [])

# METADATA
# title: Model files not verified
# description: >-
#   The model version's files could not be hashed when the evidence was
#   collected (artifacts_unverified: over the size cap, over the time budget,
#   or a store that refused; or "artifacts" in collection.gaps without it), so
#   nothing checks that the bytes deployed are the bytes decided on: INT-002
#   cannot fire and an attestation has no digest to carry. Fires unless the
#   files listed are at most max_unverified_bytes (0: any). Its effect is per
#   stage (unverified_files: enforce in production, warn elsewhere; a stage
#   not listed enforces), then modes and waivers apply as for any rule.
# custom:
#   id: INT-003
#   severity: high
#   controls:
#     - NIST CSF 2.0 PR.DS-01
#     - NIST AI RMF MANAGE 2.4
#     - OWASP ML Top 10 ML10
#     - ISO/IEC 42001 A.6.2.6
violation contains reason(rego.metadata.rule(), msg, ["artifacts_unverified", "collection.gaps"]) if {
	_int003_effect == "enforce"
	some msg in _int003_findings
}

# In a stage whose INT-003 effect is warn or dryrun, the same finding is reported there instead: the
# violation as it reads under enforce, moved (modes apply per rule, this effect per stage). A mode of
# dryrun for INT-003 still turns a warning into a dry run.
warn_reasons contains r if {
	_int003_effect == "warn"
	mode("INT-003") != "dryrun"
	some r in _int003_enforced
}

dryrun_reasons contains r if {
	_int003_effect == "dryrun"
	some r in _int003_enforced
}

dryrun_reasons contains r if {
	_int003_effect == "warn"
	mode("INT-003") == "dryrun"
	some r in _int003_enforced
}

_int003_enforced contains r if {
	count(_int003_findings) > 0
	some r in violation with data.policygate_params.unverified_files as {}
	r.id == "INT-003"
}

# The effect of INT-003 in the requested stage (unverified_files); enforce when the stage is unknown,
# not listed, or listed with anything else.
_int003_effect := m if {
	m := lower_str(data.policygate_params.unverified_files[target_stage])
	m in {"warn", "dryrun"}
} else := "enforce"

_unverified := u if {
	u := input.artifacts_unverified
	is_object(u)
}

_int003_findings contains msg if {
	is_object(_unverified)
	not _unverified_tolerated
	msg := sprintf(
		concat("", [
			"The files of model version %s were not verified (%s: %s): %s listed in %s file(s), %v bytes read and hashed ",
			"(%v file(s) in full) within the cap of %s bytes and %s s. Nothing checks that the files deployed are the files ",
			"decided on. Raise POLICYGATE_ARTIFACTS__MAX_BYTES or __TIMEOUT_S, or give policygate access to the store; ",
			"a team accepting the risk says so in max_unverified_bytes or unverified_files.",
		]),
		[
			subject_label, show(object.get(_unverified, "reason", null)), show(object.get(_unverified, "detail", null)),
			_bytes_label(object.get(_unverified, "size", null)), show(object.get(_unverified, "files", null)),
			object.get(_unverified, "bytes_read", 0), object.get(_unverified, "files_read", 0),
			show(object.get(_unverified, "max_bytes", null)), show(object.get(_unverified, "timeout_s", null)),
		],
	)
}

_int003_findings contains msg if {
	not _unverified
	"artifacts" in object.get(object.get(input, "collection", {}), "gaps", [])
	msg := sprintf(
		concat("", [
			"The files of model version %s were not verified: collection.gaps names artifacts and the evidence does not say ",
			"why (no artifacts_unverified). Nothing checks that the files deployed are the files decided on. Collect the ",
			"evidence again with a policygate that records why.",
		]),
		[subject_label],
	)
}

_bytes_label(n) := sprintf("%v bytes", [n]) if is_number(n)

else := "an unknown number of bytes"

# Files were listed, no more than max_unverified_bytes of them: the risk the policy accepts (0, the
# default: none; a model without files, or whose size is unknown, never).
_unverified_tolerated if {
	most := object.get(params, "max_unverified_bytes", 0)
	is_number(most)
	most > 0
	is_number(_unverified.size)
	_unverified.size <= most
	is_number(_unverified.files)
	_unverified.files > 0
}
