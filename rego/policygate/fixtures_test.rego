package policygate_test

# The compliant evidence document (same as examples/evidence/compliant.json).
compliant := {
	"schema": "policygate.evidence/v1",
	"subject": {
		"platform": "mlflow",
		"name": "fraud-detector",
		"version": "7",
		"ref": "mlflow:models:/fraud-detector/7",
		"aliases": ["challenger"],
		"created_at": "2026-11-01T09:30:00Z",
		"created_by": "alice@example.com",
		"tags": {
			"owner": "alice@example.com",
			"team": "payments-risk",
			"use_case": "card-transaction-fraud-scoring",
			"risk_tier": "medium",
		},
	},
	"request": {
		"target": {"stage": "production", "environment": "prod-eu"},
		"requested_by": "carol@example.com",
		"requested_at": "2026-11-20T12:00:00Z",
		"ticket": "CHG-4821",
	},
	"ownership": {
		"owner": "alice@example.com",
		"team": "payments-risk",
		"use_case": "card-transaction-fraud-scoring",
		"risk_tier": "medium",
	},
	"lineage": {
		"run": {
			"platform": "mlflow",
			"id": "4f2a9c1e7b3d4e5f8a6b0c1d2e3f4a5b",
			"status": "FINISHED",
			"experiment": {"id": "12", "name": "fraud-detector-training"},
			"user": "alice@example.com",
			"start": "2026-10-31T22:05:11Z",
			"end": "2026-10-31T23:41:37Z",
		},
		"code": {
			"commit": "9b1d3c7e5f2a4b6c8d0e1f2a3b4c5d6e7f8a9b0c",
			"repository": "https://git.example.com/payments-risk/fraud-detector.git",
			"entry_point": "train.py",
		},
		"datasets": [
			{
				"name": "transactions-2026q3",
				"digest": "sha256:5e2b8c1f0a9d7e6b4c3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c",
				"version": null,
				"source": "s3://example-ml-data/fraud/transactions-2026q3.parquet",
				"context": "training",
			},
		],
	},
	"approvals": [
		{
			"by": "bob@example.com",
			"decision": "approved",
			"stage": "production",
			"at": "2026-11-10T15:20:00Z",
			"source": "mlflow:tag",
			"verified": false,
		},
		{
			"by": "dave@example.com",
			"decision": "approved",
			"stage": "production",
			"at": "2026-11-12T08:45:00Z",
			"source": "mlflow:tag",
			"verified": false,
		},
	],
	"deployment": {
		"endpoint": {
			"name": "fraud-detector-prod",
			"auth_mode": "aad_token",
			"public_network_access": "disabled",
			"egress_public_network_access": "disabled",
		},
		"identity": {
			"type": "user_assigned",
			"principal_id": "3c9e1f52-7a4b-4d8e-9f01-2b6c5d8e7a10",
			"role_assignments": [
				{
					"role": "AzureML Data Scientist",
					"scope": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-fraud-prod",
					"principal_id": "3c9e1f52-7a4b-4d8e-9f01-2b6c5d8e7a10",
				},
			],
		},
	},
	"identities": {
		"directory": "file",
		"owner": {
			"id": "alice@example.com",
			"found": true,
			"active": true,
			"kind": "person",
			"groups": [
				"payments-risk",
			],
			"source": "file",
		},
		"approvers": [
			{
				"id": "bob@example.com",
				"found": true,
				"active": true,
				"kind": "person",
				"groups": [
					"model-risk",
				],
				"source": "file",
			},
			{
				"id": "dave@example.com",
				"found": true,
				"active": true,
				"kind": "person",
				"groups": [
					"model-risk",
				],
				"source": "file",
			},
		],
		"deployment": {
			"id": "3c9e1f52-7a4b-4d8e-9f01-2b6c5d8e7a10",
			"found": true,
			"active": true,
			"kind": "service",
			"groups": [],
			"source": "file",
			"owners": [
				{
					"id": "alice@example.com",
					"found": true,
					"active": true,
					"kind": "person",
				},
			],
			"credentials": [
				{
					"type": "federated",
					"expires": null,
				},
			],
		},
	},
	"lifecycle": {
		"retired": false,
		"retired_at": null,
		"retired_by": null,
		"retire_reason": null,
		"last_review_at": "2026-11-19T09:00:00Z",
		"last_reviewed_by": "alice@example.com",
		"reviews": [{"at": "2026-11-19T09:00:00Z", "by": "alice@example.com", "note": "use case and risk tier still hold"}],
		"events": [{"kind": "review", "at": "2026-11-19T09:00:00Z", "by": "alice@example.com", "reason_or_note": "use case and risk tier still hold"}],
	},
	"collection": {
		"collected_at": "2026-11-20T11:59:58Z",
		"sources": [
			{
				"platform": "mlflow",
				"endpoint": "https://mlflow.example.com",
				"ok": true,
				"required": true,
				"error": null,
			},
		],
		"gaps": [],
		"conflicts": [],
	},
}

# The compliant document with one JSON-patch "add" (replaces object members).
with_value(path, value) := json.patch(compliant, [{"op": "add", "path": path, "value": value}])

# The compliant document with one member removed.
without(path) := json.patch(compliant, [{"op": "remove", "path": path}])

# The compliant document with several JSON-patch operations.
patched(ops) := json.patch(compliant, ops)

# The parameters these tests assume: rego/data.json as shipped (a pytest keeps
# the two equal). The helpers below decide under them, not under the data.json
# of the moment, so a team that tunes a parameter keeps these tests true (and
# the policy loading: every load runs the tests).
shipped_params := {
	"required_approvals": {
		"production": {
			"low": 1,
			"medium": 1,
			"high": 2
		},
		"staging": {
			"low": 0,
			"medium": 0,
			"high": 0
		},
		"development": {
			"low": 0,
			"medium": 0,
			"high": 0
		}
	},
	"max_approval_age_days": 90,
	"privileged_roles": [
		"Owner",
		"Contributor",
		"User Access Administrator",
		"Role Based Access Control Administrator"
	],
	"successful_run_statuses": [
		"FINISHED",
		"Completed",
		"Succeeded"
	],
	"require_verified_approvals": false,
	"required_fields": [
		"approvals",
		"subject.created_at"
	],
	"modes": {
		"INT-001": "warn"
	},
	"allowed_signers": [],
	"unverified_files": {
		"production": "enforce",
		"staging": "warn",
		"development": "warn"
	},
	"max_unverified_bytes": 0,
	"production_auth_modes": [
		"aad_token"
	],
	"approver_groups": {
		"high": [
			"model-risk"
		]
	},
	"max_credential_days": 90,
	"require_directory": false,
	"owner_review_days": {
		"high": 90,
		"medium": 180,
		"low": 365
	}
}

# Parameters a test changes, on top of shipped_params (a key replaces the
# shipped value whole):
#   deny_ids(ev) with data.policygate_test.changed_params as {"modes": {}}
changed_params := {}

# What the helpers decide under: the shipped parameters, those a test changed
# (each key replaced whole), and any key shipped_params lacks (custom,
# allow_builtins, ...) as loaded.
pinned_params := _over(_over(_loaded_params, shipped_params), changed_params)

# a with b's keys replaced whole (object.union would merge nested objects, e.g. modes).
_over(a, b) := object.union(object.remove(a, object.keys(b)), b)

_loaded_params := data.policygate_params if is_object(data.policygate_params)

else := {}

# Decision for an evidence document under pinned_params (see above).
decide(evidence) := d if {
	d := data.policygate.decision with input as evidence with data.policygate_params as pinned_params
}

deny_ids(evidence) := {r.id | some r in decide(evidence).deny}

# The deny reasons of one rule for an evidence document.
denials(evidence, id) := [r | some r in decide(evidence).deny; r.id == id]

test_fixture_is_compliant if {
	d := decide(compliant)
	d.allow == true
	d.deny == []
	d.warn == []
	d.dryrun == []
}

test_pinned_params_are_the_shipped_ones_even_without_loaded_ones if {
	pinned_params == shipped_params with data.policygate_params as null
}
