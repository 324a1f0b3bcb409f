"""The worker's tasks: one module per queue; a task's queue is its module's name (see celeryconfig).

Importing this package builds nothing: `celery -A tasks worker` (and beat) find
the app in `tasks/celery.py`, the entry point that calls `bootstrap` once.
"""
