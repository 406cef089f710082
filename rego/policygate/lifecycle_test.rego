package policygate_test

# LIF-001 and LIF-002 under the shipped parameters (owner_review_days:
# high 90, medium 180, low 365; fixtures_test.rego's shipped_params).

_retired := with_value("/lifecycle", {
	"retired": true,
	"retired_at": "2026-11-18T10:00:00Z",
	"retired_by": "alice@example.com",
	"retire_reason": "superseded by version 8",
	"last_review_at": null,
	"last_reviewed_by": null,
	"reviews": [],
	"events": [],
})

_at_stage(ev, stage) := json.patch(ev, [{"op": "add", "path": "/request/target/stage", "value": stage}])

_warns(ev, id) := [w | some w in decide(ev).warn; w.id == id]

_never_reviewed := with_value("/lifecycle/reviews", [])

# LIF-001 -----------------------------------------------------------------------

test_lif001_passes_when_not_retired if not "LIF-001" in deny_ids(compliant)

test_lif001_passes_without_lifecycle if not "LIF-001" in deny_ids(without("/lifecycle"))

test_lif001_denies_every_target if {
	every stage in ["development", "staging", "production"] {
		[r] := denials(_at_stage(_retired, stage), "LIF-001")
		contains(r.message, "superseded by version 8")
		contains(r.message, "policygate unretire")
	}
}

test_lif001_denies_unknown_stage if {
	ev := json.patch(_retired, [{"op": "remove", "path": "/request/target/stage"}])
	count(denials(ev, "LIF-001")) == 1
}

test_lif001_only_a_true_retired_counts if {
	every v in [false, "true", 1, null] {
		not "LIF-001" in deny_ids(with_value("/lifecycle/retired", v))
	}
}

# LIF-002 -----------------------------------------------------------------------

test_lif002_passes_with_fresh_owner_review if not "LIF-002" in deny_ids(compliant)

test_lif002_counts_never_reviewed_from_registration if {
	# registered 2026-11-01, requested 2026-11-20: 19 days, within 180 (medium)
	not "LIF-002" in deny_ids(_never_reviewed)
	old := json.patch(_never_reviewed, [{"op": "add", "path": "/subject/created_at", "value": "2026-05-01T00:00:00Z"}])
	[r] := denials(old, "LIF-002")
	contains(r.message, "never reviewed by the owner; registered at 2026-05-01T00:00:00Z")
	contains(r.message, "180 days")
}

test_lif002_denies_never_reviewed_without_registration if {
	ev := json.patch(_never_reviewed, [{"op": "remove", "path": "/subject/created_at"}])
	[r] := denials(ev, "LIF-002")
	contains(r.message, "registration time is unknown")
}

test_lif002_denies_old_review if {
	ev := with_value("/lifecycle/reviews/0/at", "2026-05-01T00:00:00Z")
	[r] := denials(ev, "LIF-002")
	contains(r.message, "last reviewed by the owner at 2026-05-01T00:00:00Z")
}

test_lif002_counts_only_the_current_owner if {
	ev := with_value("/lifecycle/reviews/0/by", "mallory@example.com")
	ev2 := json.patch(ev, [{"op": "add", "path": "/subject/created_at", "value": "2026-01-01T00:00:00Z"}])
	count(denials(ev2, "LIF-002")) == 1
	ev3 := with_value("/lifecycle/reviews/0/by", "  ALICE@example.com ")
	count(denials(json.patch(ev3, [{"op": "add", "path": "/subject/created_at", "value": "2026-01-01T00:00:00Z"}]), "LIF-002")) == 0
}

test_lif002_uses_the_tier_cadence if {
	# reviewed 2026-08-01, requested 2026-11-20: 111 days
	ev := with_value("/lifecycle/reviews/0/at", "2026-08-01T00:00:00Z")
	not "LIF-002" in deny_ids(ev)
	high := json.patch(ev, [{"op": "add", "path": "/ownership/risk_tier", "value": "high"}])
	"LIF-002" in deny_ids(high)
	low := json.patch(ev, [{"op": "add", "path": "/ownership/risk_tier", "value": "low"}])
	not "LIF-002" in deny_ids(low)
}

test_lif002_unknown_tier_takes_the_shortest if {
	ev := patched([
		{"op": "add", "path": "/lifecycle/reviews/0/at", "value": "2026-08-01T00:00:00Z"},
		{"op": "add", "path": "/ownership/risk_tier", "value": "extreme"},
	])
	[r] := denials(ev, "LIF-002")
	contains(r.message, "more than 90 days")
}

test_lif002_warns_in_staging if {
	ev := _at_stage(with_value("/lifecycle/reviews/0/at", "2026-01-01T00:00:00Z"), "staging")
	not "LIF-002" in deny_ids(ev)
	[w] := _warns(ev, "LIF-002")
	w.title == "Owner review overdue"
	w.controls != []
}

test_lif002_dryrun_mode_in_staging if {
	ev := _at_stage(with_value("/lifecycle/reviews/0/at", "2026-01-01T00:00:00Z"), "staging")
	d := decide(ev) with data.policygate_test.changed_params as {"modes": {"INT-001": "warn", "LIF-002": "dryrun"}}
	"LIF-002" in {r.id | some r in d.dryrun}
	not "LIF-002" in {r.id | some r in d.warn}
}

test_lif002_silent_in_development if {
	ev := _at_stage(with_value("/lifecycle/reviews/0/at", "2020-01-01T00:00:00Z"), "development")
	not "LIF-002" in deny_ids(ev)
	count(_warns(ev, "LIF-002")) == 0
}

test_lif002_off_without_cadence if {
	ev := with_value("/lifecycle/reviews/0/at", "2020-01-01T00:00:00Z")
	not "LIF-002" in deny_ids(ev) with data.policygate_test.changed_params as {"owner_review_days": {}}
}

test_lif002_ignores_unparseable_review_times if {
	ev := patched([
		{"op": "add", "path": "/lifecycle/reviews/0/at", "value": "yesterday"},
		{"op": "add", "path": "/subject/created_at", "value": "2026-01-01T00:00:00Z"},
	])
	"LIF-002" in deny_ids(ev)
}
