"""The broker is chosen by URL: Redis and RabbitMQ both carry real messages."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any
from urllib.parse import urlparse

import dramatiq
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from lesionloop.settings.base import dramatiq_broker_settings

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


@pytest.mark.parametrize(
    ("url", "broker"),
    [
        ("", "dramatiq.brokers.stub.StubBroker"),
        ("redis://127.0.0.1:6379/0", "dramatiq.brokers.redis.RedisBroker"),
        ("rediss://cache.example.org:6380/1", "dramatiq.brokers.redis.RedisBroker"),
        ("amqp://guest:guest@127.0.0.1:5672/", "dramatiq.brokers.rabbitmq.RabbitmqBroker"),
    ],
)
def test_broker_class_follows_the_url_scheme(url: str, broker: str) -> None:
    assert dramatiq_broker_settings(url)["BROKER"] == broker


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "postgres://x/y", "127.0.0.1:6379"])
def test_nonsense_broker_url_fails_loudly(url: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="DRAMATIQ_BROKER_URL"):
        dramatiq_broker_settings(url)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=3):
            return True
    except OSError:
        return False


@pytest.mark.e2e
@pytest.mark.parametrize(("url", "port"), [(REDIS_URL, 6379), (AMQP_URL, 5672)])
def test_a_message_round_trips_through_the_real_broker(url: str, port: int) -> None:
    if not _reachable(url, port):
        pytest.fail(f"broker not reachable at {url}: .ci/run starts Redis and RabbitMQ")
    config = dramatiq_broker_settings(url)
    broker = import_string(config["BROKER"])(url=url, middleware=[])
    queue = f"ll-broker-check-{uuid.uuid4().hex[:8]}"
    seen: list[Any] = []

    def record(study_id: int) -> None:
        seen.append(study_id)

    actor = dramatiq.actor(record, broker=broker, queue_name=queue, actor_name=f"record_{queue}")
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        actor.send(42)
        broker.join(queue, timeout=20_000)
        worker.join()
    finally:
        worker.stop()
        if hasattr(broker, "channel"):
            broker.channel.queue_delete(queue)
            broker.channel.queue_delete(f"{queue}.DQ")
            broker.channel.queue_delete(f"{queue}.XQ")
        else:
            broker.flush(queue)
        broker.close()
    assert seen == [42]
