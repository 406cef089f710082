package policygate

# Access: the deployment a model is promoted into runs with least privilege
# and is not reachable anonymously or from the internet when that matters.
# These rules only fire when the evidence has deployment data.

deployment := d if {
	d := input.deployment
	is_object(d)
}

endpoint := e if {
	e := deployment.endpoint
	is_object(e)
}

role_assignments contains ra if {
	some ra in deployment.identity.role_assignments
	is_object(ra)
}

_identity_label := sprintf("%s identity %s", [
	show(object.get(deployment, ["identity", "type"], null)),
	show(object.get(deployment, ["identity", "principal_id"], null)),
])

# Scope is a resource group or a resource inside one.
_within_resource_group(scope) if {
	is_string(scope)
	regex.match(`(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+`, scope)
}

_production_auth_mode(mode) if lower_str(mode) in lower_set("production_auth_modes")

# METADATA
# title: Deployment identity holds a privileged role
# description: >-
#   The managed identity of the deployment holds a privileged role
#   (privileged_roles, e.g. Owner or Contributor), so a compromised model
#   server could change or take over the resources it can reach.
# custom:
#   id: ACC-001
#   severity: high
#   controls:
#     - NIST CSF 2.0 PR.AA-05
#     - NIST AI RMF MANAGE 2.4
#     - OWASP ML Top 10 ML06
#     - ISO/IEC 42001 A.6.2.6
violation contains reason(rego.metadata.rule(), msg, ["deployment.identity.role_assignments"]) if {
	some ra in role_assignments
	lower_str(ra.role) in lower_set("privileged_roles")
	msg := sprintf(
		"The deployment's %s holds the privileged role %s at scope %s. Replace it with a least-privilege role (e.g. AzureML Data Scientist or a custom role) scoped to the resources the endpoint needs.",
		[_identity_label, show(ra.role), show(object.get(ra, "scope", null))],
	)
}

# METADATA
# title: Role assignment scope broader than a resource group
# description: >-
#   A role of the deployment identity is assigned at a subscription, management
#   group or root scope instead of a resource group or narrower.
# custom:
#   id: ACC-002
#   severity: high
#   controls:
#     - NIST CSF 2.0 PR.AA-05
#     - OWASP ML Top 10 ML06
#     - ISO/IEC 42001 A.6.2.6
violation contains reason(rego.metadata.rule(), msg, ["deployment.identity.role_assignments"]) if {
	some ra in role_assignments
	not _within_resource_group(object.get(ra, "scope", null))
	msg := sprintf(
		"The deployment's %s holds role %s at scope %s, which is broader than a resource group. Reassign it at the resource group (or a narrower resource) the endpoint uses.",
		[_identity_label, show(object.get(ra, "role", null)), show(object.get(ra, "scope", null))],
	)
}

# METADATA
# title: Production endpoint auth mode not allowed
# description: >-
#   The endpoint of a production deployment authenticates with a mode not in
#   production_auth_modes (e.g. static keys or AML tokens instead of Microsoft
#   Entra ID tokens), or its auth mode is unknown.
# custom:
#   id: ACC-003
#   severity: high
#   controls:
#     - NIST CSF 2.0 PR.AA-03
#     - OWASP ML Top 10 ML05
#     - ISO/IEC 42001 A.6.2.6
violation contains reason(rego.metadata.rule(), msg, ["deployment.endpoint.auth_mode", "request.target.stage"]) if {
	target_stage == "production"
	ep := endpoint
	not _production_auth_mode(object.get(ep, "auth_mode", null))
	msg := sprintf(
		"Endpoint %s uses auth mode %s; production endpoints must use one of %s. Switch the endpoint's auth mode (e.g. auth_mode: aad_token) before promoting to production.",
		[
			show(object.get(ep, "name", null)), show(object.get(ep, "auth_mode", null)),
			show_list(params.production_auth_modes),
		],
	)
}

# METADATA
# title: High-risk model on a public endpoint
# description: >-
#   The endpoint serving a high-risk model has public network access enabled.
# custom:
#   id: ACC-004
#   severity: high
#   controls:
#     - NIST CSF 2.0 PR.IR-01
#     - NIST AI RMF MANAGE 2.4
#     - OWASP ML Top 10 ML05
#     - ISO/IEC 42001 A.6.2.6
violation contains reason(rego.metadata.rule(), msg, ["deployment.endpoint.public_network_access", "ownership.risk_tier"]) if {
	risk_tier == "high"
	ep := endpoint
	lower_str(ep.public_network_access) == "enabled"
	msg := sprintf(
		"Endpoint %s serves a high-risk model with public network access %s. Set public_network_access to disabled and reach it through a private endpoint.",
		[show(object.get(ep, "name", null)), show(ep.public_network_access)],
	)
}
