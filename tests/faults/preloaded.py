"""`gunicorn --preload tests.faults.preloaded:app`: the parent publishes before it forks its workers.

So the parent has a running outbox publisher (thread, queue, broker connection)
when gunicorn forks, and each worker must start its own instead.
"""

from wsgi import app

with app.test_client() as client:
    answer = client.post("/api/v1/auth/register", json={"email": "parent@example.com", "password": "Passw0rd!",
                                                         "firstName": "Pre", "lastName": "Load"})
    assert answer.status_code == 201, answer.json
