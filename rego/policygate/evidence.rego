package policygate

# Evidence: a decision is only as good as the evidence it is made on. A
# required source that could not be read, or a required field the collectors
# could not find, makes the evidence incomplete and the gate closed.

# A gap matters when it is a required field or a parent of one (a missing
# "lineage" object also means a missing "lineage.run").
_required_gap(gap) if gap in params.required_fields

_required_gap(gap) if {
	is_string(gap)
	some field in params.required_fields
	startswith(field, concat("", [gap, "."]))
}

_evd001_problems contains {"msg": msg, "fields": ["collection.sources"]} if {
	some src in input.collection.sources
	is_object(src)
	object.get(src, "ok", false) != true
	object.get(src, "required", true) != false
	msg := sprintf(
		"Required evidence source %s (%s) could not be read: %s. Fix access to the source and collect the evidence again.",
		[
			show(object.get(src, "platform", null)), show(object.get(src, "endpoint", null)),
			show(object.get(src, "error", null)),
		],
	)
}

_evd001_problems contains {"msg": msg, "fields": ["collection.gaps", gap]} if {
	some gap in input.collection.gaps
	_required_gap(gap)
	msg := sprintf(
		"Required evidence field %s is missing for model version %s. Record it on the platform (or fix the collector) and collect the evidence again.",
		[show(gap), subject_label],
	)
}

_evd001_problems contains {"msg": msg, "fields": ["schema"]} if {
	schema := input.schema
	schema != "policygate.evidence/v1"
	msg := sprintf(
		"Evidence schema %s is not policygate.evidence/v1, which these policies are written for. Collect the evidence with a matching policygate version.",
		[show(schema)],
	)
}

# METADATA
# title: Evidence incomplete
# description: >-
#   A required evidence source could not be read (ok is false and required is
#   not false), or a field listed in required_fields is reported missing in
#   collection.gaps, or the document is not policygate.evidence/v1. The gate
#   does not decide on evidence it could not collect.
# custom:
#   id: EVD-001
#   severity: high
#   controls:
#     - NIST AI RMF MEASURE 2.1
#     - NIST AI RMF GOVERN 1.5
#     - NIST CSF 2.0 ID.AM-08
#     - ISO/IEC 42001 A.7.2
violation contains reason(rego.metadata.rule(), problem.msg, problem.fields) if {
	some problem in _evd001_problems
}
