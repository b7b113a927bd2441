"""``core.queueing`` on a real Redis broker: the id it records is the one the broker
holds, ``message_live`` follows the message, and a dead broker never raises."""

from __future__ import annotations

import os
import uuid
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from lesionloop.core import queueing

REDIS_URL = os.environ.get("LESIONLOOP_QUEUEING_REDIS_URL", "redis://127.0.0.1:6379/9")


@pytest.fixture
def redis_broker(monkeypatch: pytest.MonkeyPatch) -> Any:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
    broker = RedisBroker(url=REDIS_URL, middleware=[])
    monkeypatch.setattr(dramatiq, "get_broker", lambda: broker)
    yield broker
    broker.flush_all()
    broker.close()


@pytest.mark.e2e
@pytest.mark.parametrize("delay_ms", [None, 60_000], ids=["now", "delayed"])
def test_a_sent_message_is_live_until_consumed(redis_broker: Any, delay_ms: int | None) -> None:
    queue = f"ll-q-{uuid.uuid4().hex[:8]}"
    seen: list[int] = []
    actor = dramatiq.actor(
        lambda x: seen.append(x), broker=redis_broker, queue_name=queue, actor_name=queue
    )
    message_id = queueing.send(actor, 7, delay_ms=delay_ms)
    assert message_id
    assert queueing.message_live(queue, message_id) is True
    assert queueing.message_live(queue, "not-a-message") is False
    if delay_ms:
        return
    worker = dramatiq.Worker(redis_broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        redis_broker.join(queue, timeout=20_000)
        worker.join()
    finally:
        worker.stop()
    assert seen == [7]
    assert queueing.message_live(queue, message_id) is False


def test_a_dead_broker_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    # nothing listens on port 1
    broker = RedisBroker(url="redis://127.0.0.1:1/0", middleware=[], socket_connect_timeout=1)
    monkeypatch.setattr(dramatiq, "get_broker", lambda: broker)
    actor = dramatiq.actor(lambda: None, broker=broker, queue_name="ll-dead", actor_name="ll_dead")
    assert queueing.send(actor) == ""
    assert queueing.message_live("ll-dead", "some-id") is None  # cannot tell


def test_no_message_id_is_never_live() -> None:
    assert queueing.message_live("default", "") is False


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("worker_beat_age_s", "live"),
    [(1, True), (3600, False)],
    ids=["fetched by a live worker", "fetched by a dead worker"],
)
def test_a_fetched_message_is_live_only_while_its_worker_is(
    redis_broker: Any, worker_beat_age_s: int, live: bool
) -> None:
    """A worker that was SIGKILLed keeps its prefetched messages in Redis (its ack set)
    until Dramatiq's maintenance runs: the sweeper must not count on them."""
    import time

    queue = f"ll-q-{uuid.uuid4().hex[:8]}"
    actor = dramatiq.actor(lambda: None, broker=redis_broker, queue_name=queue, actor_name=queue)
    message_id = queueing.send(actor)
    client, ns = redis_broker.client, redis_broker.namespace
    worker_id = f"w-{uuid.uuid4().hex[:6]}"
    client.lrem(f"{ns}:{queue}", 0, message_id)  # what a fetch does (dispatch.lua)
    client.sadd(f"{ns}:__acks__.{worker_id}.{queue}", message_id)
    beat_ms = (time.time() - worker_beat_age_s) * 1000
    client.zadd(f"{ns}:__heartbeats__", {worker_id: beat_ms})
    assert queueing.message_live(queue, message_id) is live
