package policygate

# Lifecycle: retirement and owner reviews as policygate recorded them
# (input.lifecycle, filled from the decision log at collection time:
# policygate retire / unretire / review, docs/identity.md).

_lifecycle := l if {
	l := input.lifecycle
	is_object(l)
} else := {}

# METADATA
# title: Retired model version
# description: >-
#   The model version was retired (policygate retire) and not un-retired
#   since: it may not be promoted or deployed to any target.
# custom:
#   id: LIF-001
#   severity: high
#   controls:
#     - NIST AI RMF MANAGE 4.1
#     - NIST AI RMF GOVERN 1.7
#     - ISO/IEC 42001 A.6.2.8
violation contains reason(rego.metadata.rule(), msg, ["lifecycle.retired", "lifecycle.retire_reason"]) if {
	object.get(_lifecycle, "retired", false) == true
	msg := sprintf(
		"Model version %s was retired by %s at %s (%s), so it may not go to %s. Promote a version that is not retired, or un-retire it with a reason (policygate unretire).",
		[
			subject_label, show(object.get(_lifecycle, "retired_by", null)),
			show(object.get(_lifecycle, "retired_at", null)), show(object.get(_lifecycle, "retire_reason", null)),
			stage_label,
		],
	)
}

# The review cadence for the model's risk tier (owner_review_days); a tier the
# parameters do not list takes the shortest cadence they name (fail closed).
_review_days := d if {
	d := object.get(data.policygate_params, ["owner_review_days", risk_tier], null)
	is_number(d)
} else := min(ds) if {
	ds := [d | some d in object.get(data.policygate_params, "owner_review_days", {}); is_number(d)]
	count(ds) > 0
}

_owner := lower_str(input.ownership.owner)

# The current owner's reviews, as ns since the epoch.
_owner_reviews contains t if {
	some r in object.get(_lifecycle, "reviews", [])
	is_object(r)
	lower_str(object.get(r, "by", null)) == _owner
	t := parse_time(object.get(r, "at", null))
}

# Since when the review clock runs: the owner's last review, else the version's
# registration; undefined when neither is known (then the review is overdue).
_review_since := [max(_owner_reviews), "last reviewed by the owner at"] if {
	count(_owner_reviews) > 0
} else := [t, "never reviewed by the owner; registered at"] if {
	t := parse_time(ev(["subject", "created_at"]))
}

_lif002_findings contains msg if {
	target_stage in {"staging", "production"}
	days := _review_days
	not _review_since
	msg := sprintf(
		"The owner %s has never reviewed model version %s and its registration time is unknown, so its review (every %v days for risk tier %s) is overdue. The owner confirms it with policygate review.",
		[show(ev(["ownership", "owner"])), subject_label, days, show(ev(["ownership", "risk_tier"]))],
	)
}

_lif002_findings contains msg if {
	target_stage in {"staging", "production"}
	days := _review_days
	[since, what] := _review_since
	ref_time_ns - since > days * ns_per_day
	msg := sprintf(
		"The owner's review of model version %s is overdue: %s %s, more than %v days (owner_review_days for risk tier %s) before this request. The owner %s confirms it with policygate review.",
		[subject_label, what, time.format(since), days, show(ev(["ownership", "risk_tier"])), show(ev(["ownership", "owner"]))],
	)
}

# LIF-002 denies production and warns in staging (then modes and waivers apply
# as for any rule).
_lif002_effect := "enforce" if target_stage == "production"

else := "warn"

# METADATA
# title: Owner review overdue
# description: >-
#   The owner's last review of the model version (policygate review) is older
#   than owner_review_days for its risk tier; a version never reviewed counts
#   from its registration (subject.created_at), and is overdue when that is
#   unknown. Denies production, warns in staging.
# custom:
#   id: LIF-002
#   severity: medium
#   controls:
#     - NIST AI RMF GOVERN 1.5
#     - NIST AI RMF GOVERN 2.1
#     - ISO/IEC 42001 A.3.2
violation contains reason(rego.metadata.rule(), msg, ["lifecycle.reviews", "ownership.owner", "subject.created_at"]) if {
	_lif002_effect == "enforce"
	some msg in _lif002_findings
}

# In staging the same finding warns (dryrun for LIF-002 still makes it a dry run).
warn_reasons contains r if {
	_lif002_effect == "warn"
	mode("LIF-002") != "dryrun"
	some r in _lif002_staging
}

dryrun_reasons contains r if {
	_lif002_effect == "warn"
	mode("LIF-002") == "dryrun"
	some r in _lif002_staging
}

_lif002_staging contains r if {
	count(_lif002_findings) > 0
	some r in violation with _lif002_effect as "enforce"
	r.id == "LIF-002"
}
