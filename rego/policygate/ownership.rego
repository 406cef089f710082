package policygate

# Ownership: every promoted model has an accountable owner, a declared use
# case and a risk tier, and the platforms agree on who the owner is.

# METADATA
# title: No accountable owner
# description: >-
#   The model version has no accountable owner recorded (ownership.owner empty
#   or missing), so nobody answers for its behaviour in the target stage.
# custom:
#   id: OWN-001
#   severity: high
#   controls:
#     - NIST AI RMF GOVERN 2.1
#     - NIST CSF 2.0 GV.RR-02
#     - ISO/IEC 42001 A.3.2
violation contains reason(rego.metadata.rule(), msg, ["ownership.owner"]) if {
	not present(ev(["ownership", "owner"]))
	msg := sprintf(
		"Model version %s has no accountable owner (ownership.owner is %s). Name an accountable person in the owner tag of the registered model or version.",
		[subject_label, show(ev(["ownership", "owner"]))],
	)
}

# METADATA
# title: Risk tier or use case not declared
# description: >-
#   The risk tier is not one of the tiers the parameters know (low, medium,
#   high), or the business use case is not declared, so the controls that
#   depend on them cannot be sized.
# custom:
#   id: OWN-002
#   severity: medium
#   controls:
#     - NIST AI RMF MAP 1.1
#     - NIST AI RMF MAP 5.1
#     - NIST CSF 2.0 GV.RM-01
#     - ISO/IEC 42001 A.5.2
violation contains reason(rego.metadata.rule(), problem.msg, problem.fields) if {
	some problem in _own002_problems
}

_own002_problems contains {"msg": msg, "fields": ["ownership.risk_tier"]} if {
	not tier_known
	msg := sprintf(
		"Risk tier %s of model version %s is not one of %s. Declare the risk tier (tag risk_tier) after a risk assessment; until then the strictest approval requirements apply.",
		[show(ev(["ownership", "risk_tier"])), subject_label, show_list(sort(known_tiers))],
	)
}

_own002_problems contains {"msg": msg, "fields": ["ownership.use_case"]} if {
	not present(ev(["ownership", "use_case"]))
	msg := sprintf(
		"Model version %s declares no business use case (ownership.use_case is %s). Declare the intended use (tag use_case) so the risk tier can be reviewed against it.",
		[subject_label, show(ev(["ownership", "use_case"]))],
	)
}

# METADATA
# title: Platforms disagree on the owner
# description: >-
#   The evidence collectors found different owners for the model on different
#   platforms (a conflict on ownership.owner), so accountability is unclear.
# custom:
#   id: OWN-003
#   severity: medium
#   controls:
#     - NIST AI RMF GOVERN 2.1
#     - NIST CSF 2.0 GV.RR-02
#     - ISO/IEC 42001 A.3.2
violation contains reason(rego.metadata.rule(), msg, ["collection.conflicts", "ownership.owner"]) if {
	some conflict in input.collection.conflicts
	conflict.field == "ownership.owner"
	values := object.get(conflict, "values", {})
	msg := sprintf(
		"The platforms disagree on the owner of model version %s: %s. Make the owner the same on every platform.",
		[subject_label, _platform_values(values)],
	)
}

_platform_values(values) := concat(", ", [sprintf("%s says %s", [show(platform), show(value)]) |
	some platform, value in values
])
