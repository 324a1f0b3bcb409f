"""Every Celery setting, derived from `settings`.

`config(settings)` builds them; the composition root (bootstrap.py) makes the
one Celery app of a process from it, worker, beat and web publisher alike.
"""

from __future__ import annotations

from kombu import Exchange, Queue

from models import task_names
from settings import Settings

QUEUES = ("payments", "emails", "shipping", "search", "imports", "maintenance")
TASK_EXCHANGE = Exchange("shop", type="topic", durable=True)
DEAD_LETTER_EXCHANGE = Exchange("shop.dead", type="direct", durable=True)


def queue_arguments(name: str, settings: Settings) -> dict:
    """Arguments of a task queue: its type and where its rejected messages go."""
    arguments = {
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
        "x-dead-letter-routing-key": name,
    }
    if settings.TASK_QUEUE_TYPE == "quorum":
        arguments.update({
            "x-queue-type": "quorum",
            # Dead-letter at least once: RabbitMQ keeps the message until the
            # dead-letter queue has confirmed it (needs reject-publish overflow).
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
            # A message redelivered this often (a task that keeps killing its
            # worker) is dead-lettered instead of looping forever.
            "x-delivery-limit": settings.TASK_DELIVERY_LIMIT,
        })
    return arguments


def make_task_queues(settings: Settings) -> list[Queue]:
    return [Queue(name, TASK_EXCHANGE, routing_key=name, durable=True,
                  queue_arguments=queue_arguments(name, settings)) for name in QUEUES]


def make_dead_letter_queues(settings: Settings) -> list[Queue]:
    """`<queue>.dead` for every task queue: what failed for good waits here for a human."""
    arguments = {"x-queue-type": "quorum"} if settings.TASK_QUEUE_TYPE == "quorum" else {}
    return [Queue(f"{name}.dead", DEAD_LETTER_EXCHANGE, routing_key=name, durable=True,
                  queue_arguments=arguments) for name in QUEUES]


def task_options(settings: Settings) -> dict:
    """Options of single tasks that come from settings (Celery sets them on the task classes)."""
    backup = {"time_limit": settings.BACKUP_TIME_LIMIT, "soft_time_limit": settings.BACKUP_TIME_LIMIT - 60}
    return {
        task_names.SEND_EMAIL: {"max_retries": settings.EMAIL_MAX_RETRIES,
                                "retry_backoff": max(1, int(settings.EMAIL_RETRY_BACKOFF))},
        **{name: backup for name in (task_names.BACKUP_FULL, task_names.BACKUP_DIFF, task_names.BACKUP_CHECK,
                                     task_names.BACKUP_DRILL)},
    }


def config(settings: Settings) -> dict:
    """The Celery configuration for `settings`."""
    from scheduler import beat_schedule

    return {
        "broker_url": settings.CELERY_BROKER_URL,
        # Celery lets the CELERY_BROKER_URL variable override broker_url, but
        # not these: so an app built from other settings (a test's) uses its own.
        "broker_read_url": settings.CELERY_BROKER_URL,
        "broker_write_url": settings.CELERY_BROKER_URL,
        "broker_connection_timeout": settings.SERVICE_TIMEOUT,
        "broker_connection_retry_on_startup": True,
        # Publisher confirms: send_task returns only once RabbitMQ has the message.
        "broker_transport_options": {"confirm_publish": True},
        "result_backend": settings.CELERY_RESULT_BACKEND or None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        # At-least-once: ack after the task ran; a lost worker puts it back;
        # a failure for good rejects it, and RabbitMQ dead-letters it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": False,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": 120,
        "task_soft_time_limit": 90,
        "worker_max_tasks_per_child": 1000,
        "task_queues": make_task_queues(settings),
        "task_default_queue": "maintenance",
        "task_default_exchange": TASK_EXCHANGE.name,
        "task_default_exchange_type": TASK_EXCHANGE.type,
        "task_default_routing_key": "maintenance",
        "task_create_missing_queues": False,
        "task_routes": {f"tasks.{name}.*": {"queue": name, "routing_key": name} for name in QUEUES},
        "include": list(task_names.TASK_MODULES),
        "task_annotations": task_options(settings),
        # Task events cost three extra broker messages per task and one per publish; Flower switches
        # the workers' events on while it runs (its enable_events), so they are paid only when watched.
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "beat_schedule": beat_schedule(settings),
        "beat_schedule_filename": str(settings.path(settings.BEAT_SCHEDULE_FILE)),
        # Graceful stop (docs/faults.md): with REMAP_SIGTERM=SIGQUIT in the worker's environment, SIGTERM
        # lets running tasks finish for this long, then requeues the rest (acks late) and exits.
        "worker_soft_shutdown_timeout": settings.WORKER_SHUTDOWN_GRACE,
        "broker_native_delayed_delivery_queue_type": settings.CELERY_DELAYED_QUEUE_TYPE,
        # One beat: only the beat holding a Redis lock sends (a second one started by mistake waits).
        "beat_scheduler": "scheduler.single:SingleBeatScheduler",
        "beat_max_loop_interval": 5,
    }

