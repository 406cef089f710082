package policygate

# Lineage: a promotable model version must be traceable to a successful
# training run, to the exact code, and to identifiable training data.

# METADATA
# title: Model version is not traceable to a training run
# description: >-
#   The model version has no training run or job recorded (lineage.run is null
#   or missing), so how it was produced cannot be reproduced or audited.
# custom:
#   id: LIN-001
#   severity: high
#   controls:
#     - NIST AI RMF MAP 4.1
#     - NIST AI RMF MEASURE 2.1
#     - ISO/IEC 42001 A.6.2.3
#     - OWASP ML Top 10 ML10
violation contains reason(rego.metadata.rule(), msg, ["lineage.run"]) if {
	not lineage_run
	msg := sprintf(
		"Model version %s has no training run or job recorded (lineage.run is %s). Register the version from a tracked MLflow run or Azure ML job so it can be traced and reproduced.",
		[subject_label, show(ev(["lineage", "run"]))],
	)
}

# METADATA
# title: Training run did not finish successfully
# description: >-
#   The training run or job the model version came from is not in a successful
#   terminal state (successful_run_statuses, compared case-insensitively); a
#   missing status also fails.
# custom:
#   id: LIN-002
#   severity: high
#   controls:
#     - NIST AI RMF MEASURE 2.1
#     - NIST AI RMF MANAGE 1.1
#     - ISO/IEC 42001 A.6.2.4
violation contains reason(rego.metadata.rule(), msg, ["lineage.run.status"]) if {
	run := lineage_run
	not _successful_status(object.get(run, "status", null))
	msg := sprintf(
		"Training run %s on %s has status %s; only %s count as successful. Register a model version produced by a run that finished successfully.",
		[
			show(object.get(run, "id", null)),
			show(object.get(run, "platform", null)),
			show(object.get(run, "status", null)),
			show_list(params.successful_run_statuses),
		],
	)
}

# Note: a `not` expression gets only always-defined arguments (ev(),
# object.get()); OPA evaluates nested arguments outside the negation, so an
# undefined argument would make the whole rule undefined instead of firing.
_successful_status(status) if lower_str(status) in lower_set("successful_run_statuses")

# Datasets used for training: context "training" or no context at all.
training_datasets contains ds if {
	some ds in input.lineage.datasets
	is_object(ds)
	_training_context(object.get(ds, "context", null))
}

_training_context(ctx) if ctx == null

_training_context(ctx) if lower_str(ctx) == "training"

# METADATA
# title: Training data not recorded or not pinned
# description: >-
#   No training dataset is recorded for the model version, or a training
#   dataset has neither a content digest nor a version, so the exact data the
#   model learnt from cannot be identified.
# custom:
#   id: LIN-003
#   severity: medium
#   controls:
#     - NIST AI RMF MAP 4.1
#     - NIST AI RMF MEASURE 2.9
#     - ISO/IEC 42001 A.7.5
#     - OWASP ML Top 10 ML02
violation contains reason(rego.metadata.rule(), msg, ["lineage.datasets"]) if {
	some msg in _lin003_problems
}

_lin003_problems contains msg if {
	count(training_datasets) == 0
	msg := sprintf(
		"No training dataset is recorded for model version %s (lineage.datasets has no entry with context \"training\" or no context). Log the training data with the run (e.g. mlflow.log_input) or use an Azure ML data asset as job input.",
		[subject_label],
	)
}

_lin003_problems contains msg if {
	some ds in training_datasets
	not present(object.get(ds, "digest", null))
	not present(object.get(ds, "version", null))
	msg := sprintf(
		"Training dataset %s (source %s) has neither a digest nor a version, so the exact data cannot be identified. Record a content digest or use a versioned data asset.",
		[show(object.get(ds, "name", null)), show(object.get(ds, "source", null))],
	)
}

# METADATA
# title: No code version recorded
# description: >-
#   The source commit the training run was built from is not recorded
#   (lineage.code.commit empty or missing).
# custom:
#   id: LIN-004
#   severity: medium
#   controls:
#     - NIST AI RMF MAP 4.1
#     - NIST CSF 2.0 PR.PS-01
#     - ISO/IEC 42001 A.6.2.3
violation contains reason(rego.metadata.rule(), msg, ["lineage.code.commit"]) if {
	not present(ev(["lineage", "code", "commit"]))
	msg := sprintf(
		"No source commit is recorded for the training code of model version %s (lineage.code.commit is %s). Train from a clean git checkout so the run records its commit (mlflow.source.git.commit or the job's code snapshot).",
		[subject_label, show(ev(["lineage", "code", "commit"]))],
	)
}
