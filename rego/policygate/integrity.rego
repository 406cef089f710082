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
