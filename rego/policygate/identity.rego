package policygate

# Identity: the owner, the approvers and the deployment's identity as the
# identity directory sees them (input.identities, POLICYGATE_DIRECTORY). With
# no directory the three rules cannot check, and say so: an "unchecked"
# reason, which warns (main.rego) unless require_directory is true.

# The directory provider that answered; undefined when none is configured.
directory := d if {
	d := input.identities.directory
	present(d)
}

_require_directory if object.get(params, "require_directory", false) == true

# Extra fields of a reason the rule could not check: it warns unless the
# parameters require a directory.
_unchecked_extra := {} if _require_directory

else := {"unchecked": true}

_unchecked_msg(rule) := sprintf(
	"%s not checked: no directory (input.identities.directory is %s). Configure POLICYGATE_DIRECTORY (file:PATH or scim:URL) so the owner, the approvers and the deployment identity are looked up.",
	[rule, show(object.get(input, ["identities", "directory"], null))],
)

# An identity the directory returned for an id (case-insensitive), if any.
_looked_up(i, who) if {
	is_object(i)
	lower_str(i.id) == lower_str(who)
}

_active_person(i) if {
	i.found == true
	i.active == true
	i.kind == "person"
}

# Why an identity is not an active person; undefined when it is one.
_not_active_person(i) := "is unknown to the directory" if {
	not i.found == true
} else := "is disabled or has left (active: false)" if {
	not i.active == true
} else := sprintf("is a %s identity, not a person", [show(object.get(i, "kind", null))]) if {
	not i.kind == "person"
}

_stage_governed if target_stage in {"staging", "production"}

# METADATA
# title: Owner is not an active person in the directory
# description: >-
#   The model's owner is unknown to the identity directory, disabled or gone,
#   or a service identity, so nobody accountable answers for the model.
#   Applies to staging and production; without a directory it warns that it
#   could not check (denies when require_directory is true).
# custom:
#   id: OWN-004
#   severity: high
#   controls:
#     - NIST AI RMF GOVERN 2.1
#     - NIST CSF 2.0 GV.RR-02
#     - ISO/IEC 42001 A.3.2
violation contains object.union(reason(rego.metadata.rule(), p.msg, ["identities.owner", "ownership.owner"]), p.extra) if {
	some p in _own004
}

_own004 contains {"msg": _unchecked_msg("OWN-004 (owner is an active person)"), "extra": _unchecked_extra} if {
	_stage_governed
	present(input.ownership.owner)
	not directory
}

_own004 contains {"msg": msg, "extra": {}} if {
	_stage_governed
	directory
	owner := input.ownership.owner
	present(owner)
	why := _owner_problem(owner)
	msg := sprintf(
		"The owner %s of model version %s %s in the directory (%s), so nobody accountable answers for it in %s. Name an active person as owner (tag owner).",
		[show(owner), subject_label, why, directory, stage_label],
	)
}

_owner_problem(owner) := why if {
	i := input.identities.owner
	_looked_up(i, owner)
	why := _not_active_person(i)
} else := "was not looked up" if {
	not _looked_up(input.identities.owner, owner)
}

# The approver groups the model's risk tier requires (approver_groups); an
# unknown tier requires a group of every tier that names groups.
_tier_groups := {lower_str(g) | some g in object.get(params, ["approver_groups", risk_tier], []); is_string(g)}

_in_groups(_, groups) if count(groups) == 0

_in_groups(i, groups) if {
	some g in object.get(i, "groups", [])
	lower_str(g) in groups
}

_group_ok(i) if {
	tier_known
	_in_groups(i, _tier_groups)
}

_group_ok(i) if {
	not tier_known
	every _, gs in object.get(params, "approver_groups", {}) {
		_in_groups(i, {lower_str(g) | some g in gs; is_string(g)})
	}
}

# Why an approver's approval does not count by the directory; undefined when
# it counts or when there is no directory (then APR-004 warns, APR-001 counts
# as before).
approver_problem(by) := why if {
	directory
	some i in input.identities.approvers
	_looked_up(i, by)
	why := _approver_identity_problem(i)
} else := "was not looked up in the directory" if {
	directory
	not _approver_seen(by)
}

_approver_seen(by) if {
	some i in input.identities.approvers
	_looked_up(i, by)
}

_approver_identity_problem(i) := why if {
	why := _not_active_person(i)
} else := msg if {
	not _group_ok(i)
	msg := sprintf("is not in an approver group for %s (approver_groups: %s; member of %s)", [
		_tier_note, show_list(sort(_tier_groups)), show_list(sort(object.get(i, "groups", []))),
	])
}

# METADATA
# title: Approver is not an active person in an approver group
# description: >-
#   An approval for the requested stage that would otherwise count
#   (independent, fresh, verified when required) was given by someone the
#   identity directory does not show as an active person in a group that
#   approver_groups names for the model's risk tier. Such approvals are not
#   counted by APR-001. Without a directory it warns that it could not check
#   (denies when require_directory is true).
# custom:
#   id: APR-004
#   severity: high
#   controls:
#     - NIST CSF 2.0 PR.AA-05
#     - NIST AI RMF GOVERN 2.1
#     - ISO/IEC 42001 A.3.2
violation contains object.union(reason(rego.metadata.rule(), p.msg, ["approvals", "identities.approvers"]), p.extra) if {
	some p in _apr004
}

_apr004 contains {"msg": _unchecked_msg("APR-004 (approvers are active people in an approver group)"), "extra": _unchecked_extra} if {
	count(target_approvals) > 0
	not directory
}

_apr004 contains {"msg": msg, "extra": {}} if {
	some a in eligible_approvals
	why := approver_problem(a.by)
	msg := sprintf(
		"Approval for %s by %s does not count: %s %s. Have an active member of an approver group approve instead.",
		[stage_label, show(a.by), show(a.by), why],
	)
}

# The deployment's identity: its principal id, and how the directory sees it.
_principal := p if {
	p := deployment.identity.principal_id
	present(p)
}

_max_credential_ns := object.get(params, "max_credential_days", 90) * ns_per_day

_acc005_problems contains "is unknown to the directory" if {
	_principal
	not _deployment_identity.found == true
}

_acc005_problems contains "is disabled" if {
	_deployment_identity.found == true
	not _deployment_identity.active == true
}

_acc005_problems contains "has no active human owner" if {
	_deployment_identity.found == true
	not _has_active_owner
}

_acc005_problems contains "holds a client secret" if {
	some c in _deployment_identity.credentials
	lower_str(c.type) == "secret"
}

_acc005_problems contains msg if {
	some c in _deployment_identity.credentials
	lower_str(c.type) != "federated"
	why := _long_lived(c)
	msg := sprintf("holds a long-lived %s credential (%s, more than max_credential_days %v)", [lower_str(c.type), why, object.get(params, "max_credential_days", 90)])
}

_long_lived(c) := "it never expires" if {
	not parse_time(object.get(c, "expires", null))
} else := sprintf("expires %s", [c.expires]) if {
	parse_time(c.expires) - ref_time_ns > _max_credential_ns
}

_has_active_owner if {
	some o in _deployment_identity.owners
	_active_person(o)
}

_deployment_identity := i if {
	i := input.identities.deployment
	_looked_up(i, _principal)
} else := {"id": _principal, "found": false}

# METADATA
# title: Deployment identity without an active owner or with long-lived secrets
# description: >-
#   The identity the production deployment runs as is unknown or disabled in
#   the directory, has no active human owner, holds a client secret, or holds
#   a credential valid for longer than max_credential_days. Without a
#   directory it warns that it could not check (denies when require_directory
#   is true).
# custom:
#   id: ACC-005
#   severity: high
#   controls:
#     - NIST CSF 2.0 PR.AA-01
#     - NIST CSF 2.0 PR.AA-05
#     - NIST AI RMF MANAGE 2.4
#     - ISO/IEC 42001 A.6.2.6
violation contains object.union(reason(rego.metadata.rule(), p.msg, ["identities.deployment", "deployment.identity.principal_id"]), p.extra) if {
	some p in _acc005
}

_acc005 contains {"msg": _unchecked_msg("ACC-005 (deployment identity hygiene)"), "extra": _unchecked_extra} if {
	target_stage == "production"
	_principal
	not directory
}

_acc005 contains {"msg": msg, "extra": {}} if {
	target_stage == "production"
	directory
	count(_acc005_problems) > 0
	msg := sprintf(
		"The deployment identity %s of model version %s %s (directory: %s). Give it an active human owner and workload identity federation instead of secrets, or credentials shorter than %v days.",
		[show(_principal), subject_label, concat("; ", sort(_acc005_problems)), directory, object.get(params, "max_credential_days", 90)],
	)
}
