"""The only place that relies on Rasa 3.6 internals; pinned by tests/test_rasa_contract.py.

Rasa's documented extension points (an `InputChannel` with its blueprint and credentials,
`request.app.ctx.agent`, the agent's tracker and lock stores, the processor's public
methods) carry most of the relay channel. Three of its promises have no documented hook:

- **All or nothing** needs to know that a custom action failed, but Rasa catches the
  failure itself (`MessageProcessor._run_action`, `ActionExtractSlots._run_custom_action`),
  logs it and carries on. `failed_custom_actions()` wraps `RemoteAction.run` to note the
  failure in a context variable before Rasa swallows it.
- It also needs the turn without its save, and `handle_message` always saves: the channel
  mirrors `handle_message` from public steps, except the prediction loop, which is private
  (`run_prediction_loop`).
- **Erasure** must reach the stores behind Rasa's `FailSafeTrackerStore`, which has no
  public accessor for its primary store (`inner_tracker_stores`).

`fingerprint()` reports the Rasa version and the signature and source hash of each
function relied on; the contract test compares it to the values these were checked
against, so an upgrade fails loudly until someone re-reads the functions below.
"""

from __future__ import annotations

import contextvars
import hashlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import rasa
from rasa.core.actions.action import ActionExecutionRejection, ActionExtractSlots, RemoteAction
from rasa.core.channels.channel import OutputChannel
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import FailSafeTrackerStore, TrackerStore
from rasa.shared.core.trackers import DialogueStateTracker

# The action server's answers that mean the action itself failed (it raised, or this
# server does not know it): retrying the same message soon will fail the same way. Any
# other failure (no connection, a timeout, a proxy's 502/503) is the server being away.
ACTION_BROKEN_STATUSES = frozenset({404, 500})


@dataclass(frozen=True)
class FailedAction:
    name: str
    broken: bool  # the action server answered that the action failed (not: unreachable)


# The custom actions that failed during the current turn (None outside a turn).
_failed: contextvars.ContextVar[list[FailedAction] | None] = contextvars.ContextVar(
    "pmi_failed_actions", default=None
)

# What this module relies on: each must keep its signature and, for the behaviour
# described in the module docstring, its source.
RELIED_ON: dict[str, Any] = {
    "MessageProcessor.handle_message": MessageProcessor.handle_message,
    "MessageProcessor.log_message": MessageProcessor.log_message,
    "MessageProcessor.run_action_extract_slots": MessageProcessor.run_action_extract_slots,
    "MessageProcessor._run_prediction_loop": MessageProcessor._run_prediction_loop,
    "MessageProcessor._run_action": MessageProcessor._run_action,
    "MessageProcessor.run_anonymization_pipeline": MessageProcessor.run_anonymization_pipeline,
    "MessageProcessor.save_tracker": MessageProcessor.save_tracker,
    "ActionExtractSlots._run_custom_action": ActionExtractSlots._run_custom_action,
    "RemoteAction.run": RemoteAction.run,
    "FailSafeTrackerStore.__init__": FailSafeTrackerStore.__init__,
}


def _original(function: Any) -> Any:
    return getattr(function, "__wrapped__", function)


def fingerprint() -> dict[str, Any]:
    """The Rasa version and, per function relied on, its signature and source hash."""
    functions = {}
    for name, function in RELIED_ON.items():
        function = _original(function)
        source = inspect.getsource(function).encode()
        functions[name] = {
            "signature": str(inspect.signature(function)),
            "sha256": hashlib.sha256(source).hexdigest()[:16],
        }
    return {"rasa": rasa.__version__, "functions": functions}


def _install_failure_recorder() -> None:
    """Wrap `RemoteAction.run` once so that a failed custom action is seen by the turn.

    The wrapper only notes the failure and re-raises: Rasa handles it as it would anyway.
    """
    original = RemoteAction.run
    if hasattr(original, "__wrapped__"):
        return

    async def run(self: RemoteAction, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except ActionExecutionRejection:
            raise  # a form rejecting a value is normal dialogue, not a failure
        except Exception as exc:
            failed = _failed.get()
            if failed is not None:
                cause = exc.__cause__
                status = getattr(cause, "status", None) if cause is not None else None
                failed.append(FailedAction(self.name(), status in ACTION_BROKEN_STATUSES))
            raise

    run.__wrapped__ = original  # type: ignore[attr-defined]
    RemoteAction.run = run  # type: ignore[method-assign]


@contextmanager
def failed_custom_actions() -> Iterator[list[FailedAction]]:
    """Collect the custom actions that fail inside the block."""
    _install_failure_recorder()
    failed: list[FailedAction] = []
    token = _failed.set(failed)
    try:
        yield failed
    finally:
        _failed.reset(token)


async def run_prediction_loop(
    processor: MessageProcessor, output_channel: OutputChannel, tracker: DialogueStateTracker
) -> None:
    """Predict and run actions until Rasa listens, without saving the tracker."""
    await processor._run_prediction_loop(output_channel, tracker)


def inner_tracker_stores(store: TrackerStore) -> list[TrackerStore]:
    """The concrete stores behind Rasa's tracker store (unwrapping the fail-safe wrapper)."""
    if isinstance(store, FailSafeTrackerStore):
        inner = [store._tracker_store]
        if store._fallback_tracker_store is not None:
            inner.append(store._fallback_tracker_store)
        return [s for item in inner for s in inner_tracker_stores(item)]
    return [store]
