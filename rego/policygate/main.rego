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
#   {"allow", "deny", "warn", "dryrun", "errors"}; allow is true only when
#   deny and errors are empty. Always defined, for any input object. A
#   non-empty errors list (a mistake in the policies themselves) makes
#   policygate answer outcome error, never allow.
# entrypoint: true
decision := {
	"allow": (count(deny_reasons) + count(policy_errors)) == 0,
	"deny": _by_id(deny_reasons),
	"warn": _by_id(warn_reasons),
	"dryrun": _by_id(dryrun_reasons),
	"errors": sort(policy_errors),
}

# ---------------------------------------------------------------------------
# Policy errors: mistakes in the policies that policygate's load checks refuse
# (policy check, start-up, reload). Checked here too, so that an OPA that
# policygate did not load (POLICYGATE_OPA_URL, a sidecar) still fails closed.
# ---------------------------------------------------------------------------

policy_errors contains "data.policygate_params is missing or not an object: load rego/data.json with the policies" if {
	not is_object(data.policygate_params)
}

policy_errors contains msg if {
	some r in violation
	problem := _reason_problem(r)
	msg := sprintf("a violation rule produced a malformed reason (%s): %v", [problem, _reason_label(r)])
}

_reason_label(r) := object.get(r, "id", r) if is_object(r)

else := r

_severities := {"low", "medium", "high", "critical"}

_reason_problem(r) := "not an object" if {
	not is_object(r)
} else := "no rule id: the rule's METADATA needs custom.id" if {
	not regex.match(`^[A-Z]{2,5}-[0-9]{3}$`, object.get(r, "id", ""))
} else := "no title: the rule's METADATA needs title" if {
	not present(object.get(r, "title", null))
} else := "no valid severity: custom.severity must be low, medium, high or critical" if {
	not object.get(r, "severity", null) in _severities
} else := "no controls: custom.controls must list at least one control" if {
	not _nonempty_strings(object.get(r, "controls", null))
} else := "no message" if {
	not present(object.get(r, "message", null))
}

_nonempty_strings(xs) if {
	is_array(xs)
	count(xs) > 0
	every x in xs {
		present(x)
	}
}

# Reasons as an array ordered by rule id (then content), for stable output.
_by_id(reasons) := [r |
	some pair in sort([[x.id, x] | some x in reasons])
	r := pair[1]
]

# Enforcement mode of a rule: enforce (default), warn or dryrun. Anything
# else, including a typo, enforces.
mode(id) := m if {
	m := lower_str(rule_modes[id])
	m in {"warn", "dryrun"}
} else := "enforce"

# A reason its rule marks unchecked (it could not check: no directory, see
# identity.rego) warns in enforce mode: it never denies on its own.
_unchecked(r) if r.unchecked == true

deny_reasons contains r if {
	some r in violation
	mode(r.id) == "enforce"
	not waiver_for(r)
	not _unchecked(r)
}

warn_reasons contains r if {
	some r in violation
	mode(r.id) == "enforce"
	_unchecked(r)
}

warn_reasons contains object.union(r, {"waiver": wid, "message": msg}) if {
	some r in violation
	mode(r.id) == "enforce"
	not _unchecked(r)
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
	is_string(w.rule)
	upper(trim_space(w.rule)) == r.id
	_waiver_model_matches(w.model)
	_waiver_targets_match(w)
	regex.match(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T`, w.expires)
	parse_time(w.expires) > ref_time_ns
}

_waiver_model_matches(pattern) if pattern == input.subject.ref

_waiver_model_matches(pattern) if {
	is_string(pattern)
	is_string(input.subject.ref)
	glob.match(pattern, null, input.subject.ref)
}

_waiver_targets_match(w) if not _waiver_has_targets(w)

_waiver_targets_match(w) if {
	some stage in w.targets
	lower_str(stage) == target_stage
}

_waiver_has_targets(w) if {
	t := object.get(w, "targets", null)
	t != null
	t != []
}
