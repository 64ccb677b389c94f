"""The outcome notices the functions sent, read from moto's SNS topic and SQS queue in this process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aurora_restore.local.world import ACCOUNT


@dataclass(frozen=True)
class NoticeCount:
    """How many outcome notices name one operation: published to the topic, and sent to the queue."""

    topic: int = 0
    queue: int = 0

    @property
    def total(self) -> int:
        return self.topic + self.queue


def topic_messages(region: str, topic_name: str) -> list[str]:
    """Every message published to the topic (moto keeps them; nothing is subscribed locally)."""
    from moto.sns.models import sns_backends

    topic = sns_backends[ACCOUNT][region].topics.get(f"arn:aws:sns:{region}:{ACCOUNT}:{topic_name}")
    return [str(sent[1]) for sent in topic.sent_notifications] if topic is not None else []


def topic_entries(region: str, topic_name: str) -> list[str]:
    """Every publication to the topic as moto records it (id, message, subject, ...), as JSON text."""
    from moto.sns.models import sns_backends

    topic = sns_backends[ACCOUNT][region].topics.get(f"arn:aws:sns:{region}:{ACCOUNT}:{topic_name}")
    return [json.dumps(sent) for sent in topic.sent_notifications] if topic is not None else []


def queue_messages(region: str, queue_name: str) -> list[str]:
    """Every message of a queue, read without consuming it (nothing reads the notices' queue locally)."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT][region].queues.get(queue_name)
    return [message.body for message in queue._messages] if queue is not None else []


def count_notices(region: str, name: str, operation_id: str) -> NoticeCount:
    """The outcome notices naming `operation_id` on the topic and the queue called `name`."""
    return NoticeCount(
        topic=sum(1 for body in topic_messages(region, name) if _names(body, operation_id)),
        queue=sum(1 for body in queue_messages(region, name) if _names(body, operation_id)),
    )


def _names(body: str, operation_id: str) -> bool:
    try:
        notice: Any = json.loads(body)
    except ValueError:
        return False
    return isinstance(notice, dict) and notice.get("operation_id") == operation_id
