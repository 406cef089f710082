package policygate

# Shared helpers for the policygate rules. Nothing here decides anything on its
# own; every helper is total over odd input (missing keys, nulls, wrong types)
# so that a rule fails closed instead of silently not firing.

# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------

# The policy parameters: data.policygate_params (rego/data.json), checked
# against policygate's parameter schema whenever policygate loads the policies.
# There is no fallback: without parameters the decision is an error (see
# policy_errors in main.rego), never a silent default.
params := data.policygate_params

# The object-valued parameters, read by their own paths: a test that pins one
# (`with data.policygate_params.modes as {}`) must replace it, but OPA (seen on
# v1.22.3) merges such a `with` into a read of the whole data.policygate_params.
rule_modes := data.policygate_params.modes

approvals_required := data.policygate_params.required_approvals

# A list parameter as a set of lower-cased strings (for case-insensitive tests).
lower_set(name) := {lower_str(x) | some x in params[name]; is_string(x)}

# ---------------------------------------------------------------------------
# Reasons
# ---------------------------------------------------------------------------

# Builds a reason from the calling rule's METADATA annotation, so id, title,
# severity and controls have a single source. Total: a rule whose metadata is
# missing or incomplete still fires, and main.rego turns its malformed reason
# into a policy error instead of letting the rule vanish.
reason(meta, msg, fields) := {
	"id": object.get(meta, ["custom", "id"], null),
	"title": object.get(meta, "title", null),
	"severity": object.get(meta, ["custom", "severity"], null),
	"controls": object.get(meta, ["custom", "controls"], null),
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

# Lower-cased, trimmed string; undefined for non-strings (guarded, so strict
# builtin errors never fire on a null or a number).
lower_str(x) := lower(trim_space(x)) if is_string(x)

# True for a non-blank string.
present(x) if {
	is_string(x)
	trim_space(x) != ""
}

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
# when not shaped like one: the shape is checked first, because under strict
# builtin errors a failed parse is an error, not undefined. (A well-shaped
# impossible date, 2026-02-30, is still an error: the decision fails closed.)
parse_time(s) := time.parse_rfc3339_ns(s) if {
	is_string(s)
	regex.match(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`, s)
} else := time.parse_ns("2006-01-02T15:04:05", s) if {
	is_string(s)
	regex.match(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?$`, s)
} else := time.parse_ns("2006-01-02", s) if {
	is_string(s)
	regex.match(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$`, s)
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
	some tier, _ in approvals_required[stage]
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
