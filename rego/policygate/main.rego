# METADATA
# title: policygate model promotion gate
# description: >-
#   Decides whether an ML model version may be promoted to a target stage from
#   a policygate.evidence/v1 document (input). Area files contribute to the
#   partial set `violation`; this file applies per-rule enforcement modes
#   (data.policygate_params.modes) and time-boxed waivers
#   (data.policygate_waivers) and returns data.policygate.decision.
# related_resources:
#   - description: NIST AI Risk Management Framework 1.0
#     ref: https://www.nist.gov/itl/ai-risk-management-framework
#   - description: NIST Cybersecurity Framework 2.0
#     ref: https://www.nist.gov/cyberframework
#   - description: OWASP Machine Learning Security Top 10
#     ref: https://owasp.org/www-project-machine-learning-security-top-10/
# custom:
#   schema: policygate.evidence/v1
#   parameters: data.policygate_params
#   waivers: data.policygate_waivers
package policygate

# METADATA
# title: Promotion decision
# description: >-
#   {"allow", "deny", "warn", "dryrun"}; allow is true only when deny is
#   empty. Always defined, for any input object.
# entrypoint: true
decision := {
	"allow": count(deny_reasons) == 0,
	"deny": _by_id(deny_reasons),
	"warn": _by_id(warn_reasons),
	"dryrun": _by_id(dryrun_reasons),
}

# Reasons as an array ordered by rule id (then content), for stable output.
_by_id(reasons) := [r |
	some pair in sort([[x.id, x] | some x in reasons])
	r := pair[1]
]

# Enforcement mode of a rule: enforce (default), warn or dryrun. Anything
# else, including a typo, enforces.
mode(id) := m if {
	m := lower_str(params.modes[id])
	m in {"warn", "dryrun"}
} else := "enforce"

deny_reasons contains r if {
	some r in violation
	mode(r.id) == "enforce"
	not waiver_for(r)
}

warn_reasons contains object.union(r, {"waiver": wid, "message": msg}) if {
	some r in violation
	mode(r.id) == "enforce"
	w := waiver_for(r)
	wid := sprintf("%v", [object.get(w, "id", "unnamed")])
	msg := sprintf("%s Waived by %s (approved by %s, expires %s): %s.", [
		r.message, wid, show(object.get(w, "approved_by", null)),
		show(object.get(w, "expires", null)), show(object.get(w, "reason", null)),
	])
}

warn_reasons contains r if {
	some r in violation
	mode(r.id) == "warn"
}

dryrun_reasons contains r if {
	some r in violation
	mode(r.id) == "dryrun"
}

# ---------------------------------------------------------------------------
# Waivers
# ---------------------------------------------------------------------------

# Waivers pushed at runtime; none when data.policygate_waivers is undefined.
waivers := [w | some w in data.policygate_waivers; is_object(w)]

# The waiver that turns a violation into a warning, if any; when several
# apply, the one with the lowest id (deterministic).
waiver_for(r) := applicable[0][1] if {
	applicable := sort([[object.get(w, "id", ""), w] |
		some w in waivers
		_waiver_applies(w, r)
	])
	count(applicable) > 0
}

# A waiver applies to a violation when it names the rule, matches the model
# (exactly or as a glob without delimiters), covers the target stage (no
# targets = every stage) and expires after the reference time. A waiver
# without a valid RFC 3339 expiry never applies.
_waiver_applies(w, r) if {
	upper(trim_space(w.rule)) == r.id
	_waiver_model_matches(w.model)
	_waiver_targets_match(w)
	time.parse_rfc3339_ns(w.expires) > ref_time_ns
}

_waiver_model_matches(pattern) if pattern == input.subject.ref

_waiver_model_matches(pattern) if glob.match(pattern, null, input.subject.ref)

_waiver_targets_match(w) if not _waiver_has_targets(w)

_waiver_targets_match(w) if {
	some stage in w.targets
	lower_str(stage) == target_stage
}

_waiver_has_targets(w) if count(w.targets) > 0
