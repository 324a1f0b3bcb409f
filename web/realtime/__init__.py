"""The WebSocket gateway at /ws: a small asyncio process (`python -m web.realtime`) beside the web workers.

It holds many idle connections cheaply, which gunicorn's sync workers cannot:
each connection is a coroutine, not a worker. Events reach it through Redis
pub/sub (published after commit by `models.realtime.Broadcaster`); missed
order events are replayed from the order events table.
"""
