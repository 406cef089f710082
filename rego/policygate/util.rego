package policygate

# Shared helpers for the policygate rules. Nothing here decides anything on its
# own; every helper is total over odd input (missing keys, nulls, wrong types)
# so that a rule fails closed instead of silently not firing.

# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------

# The policy parameters: data.policygate_params (rego/data.json) deep-merged
# over _fallback_params. rego/data.json is the source of truth; the fallback
# only keeps the gate closed and deterministic when the data file was not
# loaded (e.g. `opa eval -d rego/policygate`). A test asserts both are equal.
params := object.union(_fallback_params, _configured_params)

_configured_params := p if {
	p := data.policygate_params
	is_object(p)
} else := {}

_fallback_params := {
	"required_approvals": {
		"production": {"low": 1, "medium": 1, "high": 2},
		"staging": {"low": 0, "medium": 0, "high": 0},
		"development": {"low": 0, "medium": 0, "high": 0},
	},
	"max_approval_age_days": 90,
	"privileged_roles": [
		"Owner",
		"Contributor",
		"User Access Administrator",
		"Role Based Access Control Administrator",
	],
	"successful_run_statuses": ["FINISHED", "Completed", "Succeeded"],
	"require_verified_approvals": false,
	"required_fields": [
		"approvals",
		"subject.created_at",
	],
	"modes": {},
	"production_auth_modes": ["aad_token"],
}

# A list parameter as a set of lower-cased strings (for case-insensitive tests).
lower_set(name) := {lower_str(x) | some x in params[name]}

# ---------------------------------------------------------------------------
# Reasons
# ---------------------------------------------------------------------------

# Builds a reason from the calling rule's METADATA annotation, so id, title,
# severity and controls have a single source.
reason(meta, msg, fields) := {
	"id": meta.custom.id,
	"title": meta.title,
	"severity": meta.custom.severity,
	"controls": meta.custom.controls,
	"message": msg,
	"fields": fields,
}

# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

# Evidence value at a path (array of keys), null when absent (also when the
# input itself is absent or not an object).
ev(path) := v if {
	v := object.get(input, path, null)
} else := null

# Lower-cased, trimmed string; undefined for non-strings.
lower_str(x) := lower(trim_space(x))

# True for a non-blank string.
present(x) if trim_space(x) != ""

# A value rendered for a message: quoted strings, "none" for null/absent.
show(x) := sprintf("%q", [x]) if {
	is_string(x)
} else := "none" if {
	x == null
} else := sprintf("%v", [x])

# A list of strings rendered for a message.
show_list(xs) := "none" if {
	count(xs) == 0
} else := concat(", ", [show(x) | some x in xs])

# ---------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------

ns_per_day := ((24 * 60) * 60) * 1000000000

# Parses an RFC 3339 / ISO-8601 timestamp to ns since the epoch; a timestamp
# without zone is taken as UTC, a bare date as its midnight UTC. Undefined
# when unparseable.
parse_time(s) := ns if {
	ns := time.parse_rfc3339_ns(s)
} else := ns if {
	ns := time.parse_ns("2006-01-02T15:04:05", s)
} else := ns if {
	ns := time.parse_ns("2006-01-02", s)
}

# The reference time of the decision: the request time when valid, so a
# replay of the same evidence gives the same decision; otherwise now.
ref_time_ns := t if {
	t := parse_time(input.request.requested_at)
} else := time.now_ns()

# ---------------------------------------------------------------------------
# Common facts
# ---------------------------------------------------------------------------

# Requested target stage, lower-cased; undefined when not given.
target_stage := lower_str(input.request.target.stage)

stage_label := s if {
	s := target_stage
} else := "an unknown stage"

# Declared risk tier, lower-cased; undefined when not given.
risk_tier := lower_str(input.ownership.risk_tier)

# Risk tiers the parameters know of (the keys of required_approvals).
known_tiers contains tier if {
	some stage
	some tier, _ in params.required_approvals[stage]
}

tier_known if risk_tier in known_tiers

lineage_run := run if {
	run := input.lineage.run
	is_object(run)
}

# The model reference for messages.
subject_label := show(ref) if {
	ref := ev(["subject", "ref"])
	present(ref)
} else := "(unknown model)"
