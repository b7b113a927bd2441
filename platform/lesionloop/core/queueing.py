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
import time
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
    if message is None:  # a stand-in actor (tests) that ran or dropped the call
        return ""
    # Redis keys each enqueued copy by its own id (a retry is a new copy)
    return str(message.options.get("redis_message_id") or message.message_id)


def message_live(queue_name: str, message_id: str) -> bool | None:
    """Whether the broker still holds ``message_id`` where a live worker will run it:
    waiting in the queue (or the delay queue), or fetched by a worker whose Dramatiq
    heartbeat is recent. A message fetched by a worker that died stays in Redis until
    Dramatiq's own maintenance notices (minutes), so it does not count. None when this
    broker cannot say or cannot be reached."""
    if not message_id:
        return False
    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    namespace = getattr(broker, "namespace", None)
    if client is None or namespace is None:  # RabbitMQ, the StubBroker
        return None
    try:
        return any(
            _redis_holds(broker, client, namespace, queue, message_id)
            for queue in (queue_name, f"{queue_name}.DQ")
        )
    except Exception as exc:  # noqa: BLE001 - an unreachable broker: cannot tell
        log.warning("could not ask the broker about message %s: %s", message_id, exc)
        return None


def _redis_holds(broker: Any, client: Any, namespace: str, queue: str, message_id: str) -> bool:
    """Key layout of dramatiq's Redis broker (``brokers/redis/dispatch.lua``): messages
    in ``<ns>:<queue>.msgs``, waiting ids in the list ``<ns>:<queue>``, fetched ids in
    ``<ns>:__acks__.<worker>.<queue>``, worker heartbeats (ms) in ``<ns>:__heartbeats__``."""
    if not client.hexists(f"{namespace}:{queue}.msgs", message_id):
        return False
    if client.lpos(f"{namespace}:{queue}", message_id) is not None:
        return True
    now_ms = time.time() * 1000
    timeout_ms = float(getattr(broker, "heartbeat_timeout", 60_000))
    for worker, beat_ms in client.zrange(f"{namespace}:__heartbeats__", 0, -1, withscores=True):
        worker_id = worker.decode() if isinstance(worker, bytes) else str(worker)
        acks = f"{namespace}:__acks__.{worker_id}.{queue}"
        if now_ms - beat_ms < timeout_ms and client.sismember(acks, message_id):
            return True
    return False
