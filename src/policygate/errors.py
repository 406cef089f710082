"""The one exception tree: every error policygate raises on purpose derives from
:class:`PolicygateError`, so a caller (or a test) can tell policygate's refusals from bugs, and the
reader can see here which of them become an ``error`` decision.

::

    PolicygateError
    ├── DecisionError               on the way to a decision: DecisionService answers outcome "error"
    │   ├── SourceError             a platform could not answer (sources.base)
    │   └── EngineError             OPA could not decide (engine.errors)
    ├── LogError                    the log cannot record: nothing may be answered (decisions.database;
    │                               503 / exit 2, never a decision that is not on record)
    ├── InputError (ValueError)     what a caller handed in is wrong: a 4xx or exit 2, never a decision
    │   ├── RefError                a model reference (refs)
    │   ├── DuplicateKeyError       a JSON object with a key twice (jsonload)
    │   ├── EventError              a webhook delivery's body (webhooks.events)
    │   ├── WaiverError, TimeSpecError, RevisionError, DataParseError   (policy)
    │   ├── CheckpointError         a checkpoint file or key (decisions.checkpoint)
    │   ├── AttestError             an attestation (integrity.attest)
    │   ├── SpecialFile             a deployed directory with a non-regular file (integrity.deployed)
    │   └── PackError               an evidence pack (audit.pack)
    └── the rest, each named for what refused: OidcError, SignatureError, StaleDelivery,
        WitnessRefused, DirectoryError, ArtifactsUnavailable, BudgetExceeded, DeadlineExceeded,
        AuthoringError, CandidateRefused, WaiverNotFound (LookupError), ProtocolError
        (ConnectionError), RemoteError

Pydantic's ``ValidationError`` (evidence a source produced that does not fit the schema) is the one
foreign error DecisionService also turns into an ``error`` decision; anything else raised while
collecting is one too ("failed unexpectedly"), because the gate fails closed.
"""

from __future__ import annotations


class PolicygateError(Exception):
    """Base of every error policygate raises on purpose."""


class DecisionError(PolicygateError):
    """A failure on the way to a decision: the decision is ``error`` (fail closed), and recorded."""


class InputError(PolicygateError, ValueError):
    """What a caller handed in is wrong; it changes nothing and is answered with a message."""


__all__ = ["DecisionError", "InputError", "PolicygateError"]
