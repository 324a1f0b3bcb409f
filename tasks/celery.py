"""The worker's and beat's entry point: `celery -A tasks worker|beat` finds `app` here.

Celery's `-A tasks` looks for `tasks.app`, then `tasks.celery`, then for the
`app` of the module `tasks.celery`; this module is that, so the app is built
(from the environment, once) only by a process that runs tasks or beat.
"""

from __future__ import annotations

from bootstrap import bootstrap
from tasks import metrics, signals

shop = bootstrap()
app = shop.celery
signals.connect(shop)
metrics.connect(shop)
