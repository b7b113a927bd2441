"""Handing work to the broker without trusting it: the database row is the durable queue.

Every background job is a row (``studies.Job``, ``training.TrainingRun``) before it is a
message. ``send`` hands the message over and never raises: when the broker is down the
row simply stays queued with no message id, and the periodic sweeper
(``lesionloop.loop.sweeper``) sends it again once the broker answers.
``message_live`` tells the sweeper whether a message the row recorded is still held by
the broker (Redis only; ``None`` = cannot tell, so the sweeper falls back on age).
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

log = logging.getLogger(__name__)


def send(actor: dramatiq.Actor[Any, Any], *args: Any, delay_ms: int | None = None) -> str:
    """Send ``actor(*args)``; the message id, or "" when the broker did not take it."""
    try:
        if delay_ms:
            message = actor.send_with_options(args=args, delay=delay_ms)
        else:
            message = actor.send(*args)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the row stays queued
        log.warning(
            "broker refused %s%r (%s: %s); the sweeper will send it again",
            actor.actor_name,
            args,
            type(exc).__name__,
            exc,
        )
        return ""
    # Redis keys each enqueued copy by its own id (a retry is a new copy)
    return str(message.options.get("redis_message_id") or message.message_id)


def message_live(queue_name: str, message_id: str) -> bool | None:
    """Whether the broker still holds ``message_id`` (waiting, delayed or being worked
    on); None when this broker cannot say or cannot be reached."""
    if not message_id:
        return False
    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    namespace = getattr(broker, "namespace", None)
    if client is None or namespace is None:  # RabbitMQ, the StubBroker
        return None
    try:
        return any(
            client.hexists(f"{namespace}:{queue}.msgs", message_id)
            for queue in (queue_name, f"{queue_name}.DQ")
        )
    except Exception as exc:  # noqa: BLE001 - an unreachable broker: cannot tell
        log.warning("could not ask the broker about message %s: %s", message_id, exc)
        return None
