package policygate

# Approvals: enough independent, fresh human approvals for the requested
# stage, none of them by the people who built, own or request the model.

# Entries (approvals, rejections, withdrawals) for the requested target stage.
stage_entries contains a if {
	some a in input.approvals
	is_object(a)
	lower_str(a.stage) == target_stage
}

# Approvals granted ("approved") for the requested target stage and not taken
# back. A missing decision counts as approved, as in the evidence model.
target_approvals contains a if {
	some a in stage_entries
	_approves(a)
	not _taken_back(a)
}

_approves(a) if lower_str(object.get(a, "decision", "approved")) == "approved"

# Each reviewer's latest entry for a stage wins: an approval is taken back by a
# rejection or withdrawal from the same reviewer at the same time or later, or
# one without a valid time (which cannot be placed, so it fails closed).
_taken_back(a) if {
	some b in stage_entries
	not _approves(b)
	lower_str(b.by) == lower_str(a.by)
	_not_before(object.get(b, "at", null), object.get(a, "at", null))
}

_not_before(later, _) if not parse_time(later)

_not_before(later, earlier) if parse_time(later) >= parse_time(earlier)

_not_before(later, earlier) if {
	parse_time(later)
	not parse_time(earlier)
}

# Parties an approver must be independent of: [role, identity].
sod_parties contains ["owner", who] if {
	who := lower_str(input.ownership.owner)
	who != ""
}

sod_parties contains ["run author", who] if {
	who := lower_str(input.lineage.run.user)
	who != ""
}

sod_parties contains ["requester", who] if {
	who := lower_str(input.request.requested_by)
	who != ""
}

# The authenticated caller (token:NAME or oidc:IDENTITY) asks too, also when it asks on
# someone's behalf (the delegate scope): neither may approve their own request.
sod_parties contains ["requester", who] if {
	caller := input.request.caller
	is_string(caller)
	regex.match(`^(token|oidc):.+`, caller)
	who := lower_str(substring(caller, indexof(caller, ":") + 1, -1))
	who != ""
}

# Roles (owner, run author, requester) the given approver also holds.
sod_conflicts(by) := {role |
	some [role, who] in sod_parties
	who == lower_str(by)
}

# Why an approval is stale; undefined when it is fresh.
staleness(a) := "has no valid approval time" if {
	not parse_time(object.get(a, "at", null))
} else := msg if {
	age := ref_time_ns - parse_time(a.at)
	age > params.max_approval_age_days * ns_per_day
	msg := sprintf(
		"is %d days old, older than the %v-day limit at the reference time",
		[floor(age / ns_per_day), params.max_approval_age_days],
	)
} else := msg if {
	created := parse_time(input.subject.created_at)
	parse_time(a.at) < created
	msg := sprintf("predates the model version itself (created %s)", [show(input.subject.created_at)])
}

_verification_ok(_) if params.require_verified_approvals == false

_verification_ok(a) if a.verified == true

# Approvals for the target stage that are independent, fresh and (when
# required) verified: what counts unless the directory says otherwise (APR-004).
eligible_approvals contains a if {
	some a in target_approvals
	present(a.by)
	count(sod_conflicts(a.by)) == 0
	not staleness(a)
	_verification_ok(a)
}

# Distinct approvers (lower-cased) whose approval counts towards APR-001.
counted_approvers contains lower_str(a.by) if {
	some a in eligible_approvals
	not approver_problem(a.by) # APR-004: by the directory, an active person in an approver group
}

# Approvals the target stage needs for the declared risk tier; fails closed to
# the strictest requirement of the stage when the tier is unknown, and of all
# stages when the stage is unknown.
required_approvals := n if {
	n := approvals_required[target_stage][risk_tier]
} else := n if {
	n := max({v | some v in approvals_required[target_stage]})
} else := n if {
	n := max({v | some stage; some v in approvals_required[stage]})
} else := 0

_tier_note := sprintf("a %s-risk model", [risk_tier]) if {
	tier_known
} else := "a model with unknown risk tier (strictest requirement applies)"

_verified_note := " verified" if {
	params.require_verified_approvals != false
} else := ""

# METADATA
# title: Not enough independent approvals
# description: >-
#   Fewer distinct, independent (not owner, run author or requester), fresh
#   (see APR-003) and, when required, verified approvals for the requested
#   stage than the risk tier requires. An unknown risk tier or stage uses the
#   strictest requirement.
# custom:
#   id: APR-001
#   severity: high
#   controls:
#     - NIST AI RMF GOVERN 1.4
#     - NIST AI RMF MANAGE 1.1
#     - NIST CSF 2.0 GV.RM-01
#     - ISO/IEC 42001 A.6.2.5
violation contains reason(rego.metadata.rule(), msg, fields) if {
	count(counted_approvers) < required_approvals
	msg := sprintf(
		"Promotion of %s to %s as %s needs %d independent, fresh%s approval(s) for %s; found %d (%s). Ask reviewers who are not the owner, the run author or the requester to approve for %s.",
		[
			subject_label, stage_label, _tier_note, required_approvals, _verified_note,
			stage_label, count(counted_approvers), show_list(sort(counted_approvers)), stage_label,
		],
	)
	fields := [
		"approvals", "request.target.stage", "ownership.risk_tier", "ownership.owner",
		"lineage.run.user", "request.requested_by", "subject.created_at", "request.requested_at",
	]
}

# METADATA
# title: Separation of duties broken
# description: >-
#   An approval for the requested stage was given by the model's owner, by the
#   author of its training run, or by the person requesting the promotion
#   (compared case-insensitively). Such approvals are not counted.
# custom:
#   id: APR-002
#   severity: high
#   controls:
#     - NIST CSF 2.0 PR.AA-05
#     - NIST AI RMF GOVERN 2.1
#     - ISO/IEC 42001 A.3.2
violation contains reason(rego.metadata.rule(), msg, fields) if {
	some a in target_approvals
	roles := sod_conflicts(a.by)
	count(roles) > 0
	msg := sprintf(
		"Approval for %s by %s does not count: %s is also the model's %s. Have an independent reviewer approve instead.",
		[stage_label, show(a.by), show(a.by), concat(" and ", sort(roles))],
	)
	fields := ["approvals", "ownership.owner", "lineage.run.user", "request.requested_by"]
}

# METADATA
# title: Stale approval
# description: >-
#   An approval for the requested stage is older than max_approval_age_days at
#   the reference time (the request time), older than the model version
#   itself, or has a missing or unparseable time. Stale approvals are not
#   counted.
# custom:
#   id: APR-003
#   severity: medium
#   controls:
#     - NIST AI RMF GOVERN 1.5
#     - NIST CSF 2.0 GV.OV-03
#     - ISO/IEC 42001 A.6.2.5
violation contains reason(rego.metadata.rule(), msg, fields) if {
	some a in target_approvals
	why := staleness(a)
	msg := sprintf(
		"Approval for %s by %s at %s %s. Ask %s to review model version %s again.",
		[
			stage_label, show(object.get(a, "by", null)), show(object.get(a, "at", null)), why,
			show(object.get(a, "by", null)), subject_label,
		],
	)
	fields := ["approvals", "subject.created_at", "request.requested_at"]
}
