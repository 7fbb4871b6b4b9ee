"""Login flow v2: a client starts a flow, the user approves it in a browser, the client polls once
and receives a fresh app password. No secret is stored: the app password is made at the first
successful poll, and the flow row is deleted in the same step."""

from __future__ import annotations

from dataclasses import dataclass

from talkd.clock import Clock
from talkd.crypto import random_token, sha256_hex
from talkd.domain.accounts import AccountService, NewAppPassword
from talkd.domain.model import LoginFlow, User
from talkd.errors import NotFound
from talkd.ids import UserId
from talkd.storage.accounts import LoginFlowStore

TOKEN_LENGTH = 128


@dataclass(frozen=True)
class StartedFlow:
    poll_token: str
    login_token: str


@dataclass(frozen=True)
class Completed:
    user: User
    app_password: NewAppPassword


class LoginFlows:
    def __init__(self, store: LoginFlowStore, accounts: AccountService, clock: Clock, ttl: float) -> None:
        self.store = store
        self.accounts = accounts
        self.clock = clock
        self.ttl = ttl

    async def start(self, client_name: str) -> StartedFlow:
        poll_token, login_token = random_token(TOKEN_LENGTH), random_token(TOKEN_LENGTH)
        name = " ".join(client_name.split())[:255] or "unknown client"
        await self.store.create(poll_token_hash=sha256_hex(poll_token), login_token_hash=sha256_hex(login_token),
                                client_name=name, now=int(self.clock.now()))
        return StartedFlow(poll_token, login_token)

    def _not_before(self) -> int:
        return int(self.clock.now() - self.ttl)

    async def pending(self, login_token: str) -> LoginFlow:
        """The flow a browser is approving; NotFound when unknown, expired or already approved."""
        if len(login_token) != TOKEN_LENGTH:
            raise NotFound("Unknown login flow")
        flow = await self.store.by_login_token(sha256_hex(login_token))
        if flow is None or flow.created_at < self._not_before() or flow.user_id is not None:
            raise NotFound("Unknown login flow")
        return flow

    async def grant(self, login_token: str, user_id: UserId) -> LoginFlow:
        flow = await self.pending(login_token)
        if not await self.store.grant(flow.id, user_id):
            raise NotFound("Unknown login flow")
        return flow

    async def poll(self, poll_token: str) -> Completed:
        """The client's poll: NotFound until approved (and after the one successful answer)."""
        if len(poll_token) != TOKEN_LENGTH:
            raise NotFound("Unknown login flow")
        flow = await self.store.take_granted(sha256_hex(poll_token), not_before=self._not_before())
        if flow is None or flow.user_id is None:
            raise NotFound("Unknown login flow")
        user = await self.accounts.get_user(flow.user_id)
        return Completed(user, await self.accounts.create_app_password(user.id, flow.client_name))

    async def expire(self) -> int:
        return await self.store.delete_older_than(self._not_before())
