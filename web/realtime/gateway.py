"""Connections by user, what each may receive, and the checks that close them.

Close codes (the reason text says the same in words):

| code | why |
|---|---|
| 4001 | no valid access token in the first message (or none within WS_AUTH_TIMEOUT) |
| 4002 | the access token expired |
| 4003 | the access token was revoked (logout, session ended, password or role change) |
| 4008 | the user already holds WS_MAX_CONNECTIONS_PER_USER connections |
| 4009 | slow consumer: more than WS_SEND_QUEUE messages waiting to be sent |
| 1012 | the gateway lost Redis (events may have been missed): reconnect and replay |
| 1013 | Redis could not be asked about the token, or PostgreSQL about missed events: try again later |
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import jwt
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from models.db import Database
from models.realtime import IMPORTS_CHANNEL, ORDERS_CHANNEL, events_after
from models.users.auth import revocation_keys, revoked_by
from models.users.permissions import Actor
from models.users.tables import Role
from settings import Settings

log = logging.getLogger(__name__)

AUTH_FAILED, EXPIRED, REVOKED, TOO_MANY, SLOW, RESTART, TRY_LATER = 4001, 4002, 4003, 4008, 4009, 1012, 1013
REDIS_CONNECTIONS = 32
REVOCATION_BATCH = 1000  # connections per MGET: one command of 3,000 keys costs far less than 1,000 commands
REDIS_WAIT = 15.0  # seconds a token check may wait for a Redis connection while thousands connect at once
ALGORITHM = "HS256"


class Refused(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass(eq=False)
class Client:
    """One authenticated connection and what waits to be sent to it."""

    ws: ServerConnection
    user_id: str
    claims: dict
    imports: bool
    queue: asyncio.Queue
    held: list | None = field(default_factory=list)  # events that arrive while the replay is being sent
    closing: bool = False

    def deliver(self, text: str, event_id: int | None = None) -> None:
        if self.closing:
            return
        if self.held is not None:
            self.held.append((event_id, text))
            if len(self.held) <= self.queue.maxsize:
                return
        else:
            try:
                self.queue.put_nowait(text)
                return
            except asyncio.QueueFull:
                pass
        self.close(SLOW, "slow consumer: too many messages waiting")

    def close(self, code: int, reason: str) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().create_task(self.ws.close(code, reason))


def _send_text(body: dict) -> str:
    return json.dumps(body, separators=(",", ":"), default=str)


class Gateway:
    """Authenticates connections, routes published events to them, and closes the ones that must go."""

    def __init__(self, settings: Settings, redis: Redis | None = None, db: Database | None = None):
        self.settings = settings
        # Blocking: a burst of connections waits for one of a few Redis connections instead of failing.
        self.redis = redis or Redis(connection_pool=BlockingConnectionPool.from_url(
            settings.REDIS_URL, max_connections=REDIS_CONNECTIONS, timeout=REDIS_WAIT))
        self.db = db or Database(settings.DATABASE_URL, pool_size=2, connect_timeout=settings.SERVICE_TIMEOUT)
        self.by_user: dict[str, set[Client]] = defaultdict(set)
        self.staff: set[Client] = set()

    # --- one connection ---------------------------------------------------------------------------

    async def handle(self, ws: ServerConnection) -> None:
        """Authenticate, replay what was missed, then deliver events until the connection ends."""
        try:
            client, last_seen = await self._authenticate(ws)
        except Refused as refused:
            await ws.close(refused.code, refused.reason)
            return
        except ConnectionClosed:
            return
        except (RedisError, OSError) as exc:
            log.warning("could not check a token", extra={"error": f"{exc!r} {exc}"})
            await ws.close(TRY_LATER, "try again later")
            return
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, client.claims["exp"] - time.time()), client.close, EXPIRED, "token expired")
        sender = None
        try:
            await self._replay(client, last_seen)
            sender = asyncio.create_task(self._send_queued(client))
            async for message in ws:
                await self._answer(client, message)
        except ConnectionClosed:
            pass
        except (OperationalError, PoolTimeout) as exc:  # the replay could not read the events table
            log.warning("replay failed", extra={"error": repr(exc)})
            await ws.close(TRY_LATER, "events cannot be replayed now: try again later")
        finally:
            expiry.cancel()
            if sender is not None:
                sender.cancel()
            self._remove(client)

    async def _authenticate(self, ws: ServerConnection) -> tuple[Client, int | None]:
        try:
            first = await asyncio.wait_for(ws.recv(), self.settings.WS_AUTH_TIMEOUT)
            message = json.loads(first)
            token = message["token"] if message.get("type") == "auth" else None
            last_seen = message.get("lastEventId")
        except (TimeoutError, ValueError, TypeError, KeyError, AttributeError):
            raise Refused(AUTH_FAILED, "send {\"type\": \"auth\", \"token\": ...} first") from None
        if not isinstance(token, str) or not (last_seen is None or isinstance(last_seen, int)):
            raise Refused(AUTH_FAILED, "token must be a string and lastEventId an integer")
        claims = self._claims(token)
        if revoked_by(await self.redis.mget(*revocation_keys(claims)), claims):
            raise Refused(REVOKED, "token revoked")
        actor = Actor(role=Role(claims["role"]), user_id=uuid.UUID(claims["sub"]), mfa=bool(claims.get("mfa")))
        client = Client(ws, claims["sub"], claims, actor.can("imports:view") and actor.mfa_satisfied("imports:view"),
                        asyncio.Queue(self.settings.WS_SEND_QUEUE))
        if len(self.by_user[client.user_id]) >= self.settings.WS_MAX_CONNECTIONS_PER_USER:
            raise Refused(TOO_MANY, f"at most {self.settings.WS_MAX_CONNECTIONS_PER_USER} connections per user")
        self.by_user[client.user_id].add(client)
        if client.imports:
            self.staff.add(client)
        return client, last_seen

    def _claims(self, token: str) -> dict:
        try:
            claims = jwt.decode(token, self.settings.SECRET_KEY, algorithms=[ALGORITHM],
                                options={"require": ["exp", "sub", "jti"]})
        except jwt.ExpiredSignatureError:
            raise Refused(EXPIRED, "token expired") from None
        except jwt.InvalidTokenError:
            raise Refused(AUTH_FAILED, "invalid token") from None
        if claims.get("type") != "access" or claims.get("role") not in set(Role):
            raise Refused(AUTH_FAILED, "not an access token")
        return claims

    async def _replay(self, client: Client, last_seen: int | None) -> None:
        """Send the events after `last_seen` from the table, then what arrived meanwhile, then `ready`."""
        sent, newest = 0, last_seen or 0
        while last_seen is not None:
            page = await asyncio.to_thread(self._events_after, client.user_id, newest)
            for body in page:
                await client.ws.send(_send_text(body))
                newest = body["id"]
            sent += len(page)
            if len(page) < self.settings.WS_REPLAY_LIMIT:
                break
        held, client.held = client.held, None
        for event_id, text in held:
            if event_id is None or event_id > newest:
                client.deliver(text)
        client.deliver(_send_text({"type": "ready", "userId": client.user_id, "replayed": sent,
                                   "imports": client.imports}))

    def _events_after(self, user_id: str, after_id: int) -> list[dict]:
        with self.db.session() as session:
            return events_after(session, uuid.UUID(user_id), after_id, self.settings.WS_REPLAY_LIMIT)

    @staticmethod
    async def _send_queued(client: Client) -> None:
        while True:
            await client.ws.send(await client.queue.get())

    @staticmethod
    async def _answer(client: Client, message) -> None:
        """Clients may ping (browsers cannot send protocol pings); anything else is ignored."""
        try:
            if json.loads(message).get("type") == "ping":
                client.deliver(_send_text({"type": "pong"}))
        except (ValueError, AttributeError):
            pass

    def _remove(self, client: Client) -> None:
        clients = self.by_user.get(client.user_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self.by_user[client.user_id]
        self.staff.discard(client)

    # --- all connections --------------------------------------------------------------------------

    def clients(self) -> list[Client]:
        return [client for clients in self.by_user.values() for client in clients]

    def dispatch(self, channel: str, data: bytes | str) -> None:
        """Route one published message to the connections that may see it."""
        message = json.loads(data)
        if channel == ORDERS_CHANNEL:
            event = message["event"]
            text = _send_text(event)
            for client in list(self.by_user.get(message["userId"], ())):
                client.deliver(text, event["id"])
        elif channel == IMPORTS_CHANNEL:
            text = _send_text(message)
            for client in list(self.staff):
                client.deliver(text)

    async def listen(self) -> None:
        """Follow the event channels; after losing Redis, close every connection so clients replay."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(ORDERS_CHANNEL, IMPORTS_CHANNEL)
                log.info("listening for real-time events")
                async for message in pubsub.listen():
                    channel = message["channel"]
                    self.dispatch(channel.decode() if isinstance(channel, bytes) else channel, message["data"])
            except (RedisError, OSError) as exc:
                log.warning("lost the event channels; clients reconnect and replay", extra={"error": repr(exc)})
                for client in self.clients():
                    client.close(RESTART, "events were interrupted: reconnect with lastEventId")
                await asyncio.sleep(1)
            finally:
                await pubsub.aclose()

    async def sweep_revoked(self) -> None:
        """Every WS_REVOCATION_CHECK_INTERVAL seconds, close connections whose token was revoked since."""
        while True:
            await asyncio.sleep(self.settings.WS_REVOCATION_CHECK_INTERVAL)
            try:
                await self.check_revoked()
            except (RedisError, OSError) as exc:
                log.warning("revocation check failed", extra={"error": repr(exc)})

    async def check_revoked(self) -> int:
        """Close the connections whose token is revoked now; one MGET per REVOCATION_BATCH connections."""
        closed = 0
        clients = self.clients()
        for start in range(0, len(clients), REVOCATION_BATCH):
            batch = clients[start:start + REVOCATION_BATCH]
            keys = [key for client in batch for key in revocation_keys(client.claims)]
            values = await self.redis.mget(keys)
            for n, client in enumerate(batch):
                if revoked_by(values[3 * n:3 * n + 3], client.claims):
                    client.close(REVOKED, "token revoked")
                    closed += 1
            await asyncio.sleep(0)  # let deliveries through between batches
        return closed
