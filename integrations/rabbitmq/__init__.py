"""RabbitMQ over AMQP alone (no management plugin): queue depths and dead letters."""

from integrations.rabbitmq.dead_letters import DeadLetter, DeadLetterBox
from integrations.rabbitmq.depth import QueueDepth, queue_depths

__all__ = ["DeadLetter", "DeadLetterBox", "QueueDepth", "queue_depths"]
