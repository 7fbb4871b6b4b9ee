"""Who a request is: Basic credentials (password or app password), brute-force throttling, the
verified-credential cache, and cookie sessions with Nextcloud's OCS-APIRequest rule."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from talkd import log
from talkd.api.identify import SESSION_COOKIE
from talkd.api.ocs.routing import Access, OcsRequest, OcsRouter
from tests.api.conftest import AppFactory, CountingHashing, ShiftedClock
from tests.api.test_login_flow import _open_page, _poll, _start, _submit
from tests.helpers.client import TalkClient, basic
from tests.helpers.spreed import eventually

# Basic credentials --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
async def test_wrong_credentials_are_401_with_a_basic_challenge(talk: TalkClient, version: int) -> None:
    await talk.make_user("alice", "alice-secret")
    for password in ("wrong", ""):
        reply = await talk.ocs("GET", "/cloud/user", user="alice", password=password, version=version)
        assert reply.expect(997).message == "Current user is not logged in"
        assert reply.headers["WWW-Authenticate"] == 'Basic realm="Authorisation Required"'
    ghost = await talk.ocs("GET", "/cloud/user", user="ghost", password="x", version=version)
    ghost.expect(997)


async def test_browser_scripts_get_a_dummy_challenge(talk: TalkClient) -> None:
    reply = await talk.ocs("GET", "/cloud/user", user="admin", password="wrong",
                           headers={"X-Requested-With": "XMLHttpRequest"})
    assert reply.expect(997).headers["WWW-Authenticate"] == 'DummyBasic realm="Authorisation Required"'


async def test_malformed_authorization_headers_are_anonymous(talk: TalkClient) -> None:
    for header in ("Basic !!!not-base64", "Basic " + "QUFB" * 400, "Basic YWRtaW4=", "Basic YQBiOmM="):
        reply = await talk.ocs("GET", "/cloud/user", headers={"Authorization": header})
        reply.expect(997)


async def test_wrong_credentials_on_a_public_route_are_anonymous(talk: TalkClient) -> None:
    # Nextcloud's tryBasicAuthLogin just fails: capabilities still answer.
    reply = await talk.ocs("GET", "/cloud/capabilities", user="admin", password="wrong")
    assert reply.expect(200).data["capabilities"]["spreed"]


async def test_login_names_match_whatever_the_case(talk: TalkClient) -> None:
    await talk.make_user("Alice", "alice-secret")
    reply = await talk.ocs("GET", "/cloud/user", user="alice", password="alice-secret")
    assert reply.expect(200).data["id"] == "Alice"


async def test_app_password_works_only_with_its_own_login_name(talk: TalkClient) -> None:
    await talk.make_user("alice")
    await talk.make_user("bob")
    app_password = (await talk.ocs("GET", "/core/getapppassword", user="alice")).data["apppassword"]
    (await talk.ocs("GET", "/cloud/user", user="alice", password=app_password)).expect(200)
    (await talk.ocs("GET", "/cloud/user", user="bob", password=app_password)).expect(997)


# Brute-force throttling ----------------------------------------------------------------------------


def _doubling(count: int, base: float) -> list[float]:
    """The delays before attempts 2..count+1: each failure doubles the wait (Nextcloud's Throttler)."""
    return [base * 2 ** n for n in range(1, count + 1)]


async def test_failures_from_one_address_slow_it_down_then_429(app_factory: AppFactory) -> None:
    clock = ShiftedClock()
    talk = await app_factory(clock=clock)
    base = talk.services.settings.security.bruteforce_base_delay
    # Different (even unknown) login names: the address is what is throttled.
    for n in range(6):
        (await talk.ocs("GET", "/cloud/user", user=f"user{n}", password="wrong")).expect(997)
    assert clock.throttle_sleeps == pytest.approx(_doubling(5, base))
    # Past the maximum delay the address is refused, even with good credentials, in both versions.
    for version in (1, 2):
        reply = await talk.ocs("GET", "/cloud/user", user="admin", version=version)
        assert reply.expect(429).message == "Reached maximum delay"
    # The login form is throttled by the same counter.
    flow = await _start(talk.client)
    token = await _open_page(talk.client, flow["login"])
    status, _ = await _submit(talk.client, flow["login"],
                              {"requesttoken": token, "user": "admin", "password": "admin-password"})
    assert status == 429


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_failures_for_one_account_never_lock_it_from_another_address(app_factory: AppFactory) -> None:
    """Strangers guessing at an account slow down themselves, never its owner (Nextcloud counts by
    address): the right password from another address answers at once."""
    clock = ShiftedClock()
    talk = await app_factory(clock=clock, server__trusted_proxies=("127.0.0.1",))
    await talk.make_user("victim", "victim-secret")
    for _ in range(6):
        (await talk.ocs("GET", "/cloud/user", user="victim", password="wrong", headers=via("10.0.0.1"))).expect(997)
    (await talk.ocs("GET", "/cloud/user", user="victim", headers=via("10.0.0.1"))).expect(429)
    (await talk.ocs("GET", "/cloud/user", user="admin", headers=via("10.0.0.1"))).expect(429)
    sleeps = len(clock.throttle_sleeps)
    (await talk.ocs("GET", "/cloud/user", user="victim", headers=via("10.0.0.2"))).expect(200)
    (await talk.ocs("GET", "/cloud/user", user="admin", headers=via("10.0.0.3"))).expect(200)
    assert len(clock.throttle_sleeps) == sleeps  # not even slowed down
    # Guesses from many addresses each slow down only their own address.
    for n in range(10):
        (await talk.ocs("GET", "/cloud/user", user="admin", password="wrong", headers=via(f"10.1.0.{n}"))).expect(997)
    (await talk.ocs("GET", "/cloud/user", user="admin", headers=via("10.0.0.4"))).expect(200)


async def test_ipv6_addresses_are_counted_by_their_64_prefix(app_factory: AppFactory) -> None:
    clock = ShiftedClock()
    talk = await app_factory(clock=clock, server__trusted_proxies=("127.0.0.1",))
    for n in range(6):
        (await talk.ocs("GET", "/cloud/user", user="admin", password="wrong",
                        headers=via(f"2001:db8:1:2::{n + 1:x}"))).expect(997)
    (await talk.ocs("GET", "/cloud/user", user="admin", headers=via("2001:db8:1:2:ffff::1"))).expect(429)
    (await talk.ocs("GET", "/cloud/user", user="admin", headers=via("2001:db8:1:3::1"))).expect(200)


async def test_a_login_resets_only_that_accounts_attempts_from_that_address(app_factory: AppFactory) -> None:
    """An attacker's own login between guesses wipes nothing but their own account's failures
    (Nextcloud's resetDelay(ip, 'login', ['user' => uid])): spraying stays throttled."""
    clock = ShiftedClock()
    talk = await app_factory(clock=clock, server__trusted_proxies=("127.0.0.1",))
    base = talk.services.settings.security.bruteforce_base_delay
    await talk.make_user("mallory", "mallory-secret")
    for name in ("alice", "bob", "mallory"):
        (await talk.ocs("GET", "/cloud/user", user=name, password="wrong", headers=via("10.0.0.1"))).expect(997)
    (await talk.ocs("GET", "/cloud/user", user="mallory", headers=via("10.0.0.1"))).expect(200)
    # Mallory's own failure is gone, the two guesses at others still count.
    (await talk.ocs("GET", "/cloud/user", user="carol", password="wrong", headers=via("10.0.0.1"))).expect(997)
    assert clock.throttle_sleeps[-1] == pytest.approx(base * 2 ** 2)
    assert await talk.services.throttle.attempts("10.0.0.1") == 3
    # From another address the same account's success clears nothing here.
    (await talk.ocs("GET", "/cloud/user", user="admin", password="wrong", headers=via("10.0.0.1"))).expect(997)
    (await talk.ocs("GET", "/cloud/user", user="admin", headers=via("10.0.0.2"))).expect(200)
    assert await talk.services.throttle.attempts("10.0.0.1") == 4


async def test_a_successful_login_resets_the_delay(app_factory: AppFactory) -> None:
    clock = ShiftedClock()
    talk = await app_factory(clock=clock)
    base = talk.services.settings.security.bruteforce_base_delay
    await talk.make_user("alice", "alice-secret")
    for _ in range(3):
        (await talk.ocs("GET", "/cloud/user", user="alice", password="wrong")).expect(997)
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(200)
    assert clock.throttle_sleeps == pytest.approx(_doubling(3, base))
    (await talk.ocs("GET", "/cloud/user", user="alice", password="wrong")).expect(997)
    assert len(clock.throttle_sleeps) == 3  # no delay: the success cleared the count
    (await talk.ocs("GET", "/cloud/user", user="alice", password="wrong")).expect(997)
    assert clock.throttle_sleeps[-1] == pytest.approx(base * 2)


class GatedHashing(CountingHashing):
    """Verifications wait at a gate the test opens, so every request of a burst is in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def verify(self, stored_hash: str, password: str) -> bool:
        self.waiting += 1
        await self.gate.wait()
        return await super().verify(stored_hash, password)


async def test_parallel_guesses_are_throttled_as_sequential_ones(app_factory: AppFactory) -> None:
    clock, hashing = ShiftedClock(), GatedHashing()
    talk = await app_factory(clock=clock, hashing=hashing)
    base = talk.services.settings.security.bruteforce_base_delay
    guesses = [asyncio.create_task(talk.ocs("GET", "/cloud/user", user="admin", password=f"guess{n}"))
               for n in range(30)]
    # Hold every verification until each guess is either verifying or already answered: no failure
    # has been recorded yet, so only attempts counted before verifying can slow the burst down.
    await eventually(lambda: hashing.waiting + sum(g.done() for g in guesses) == len(guesses),
                     "every guess verifying or answered")
    hashing.gate.set()
    statuses = Counter(reply.status_code for reply in await asyncio.gather(*guesses))
    assert statuses == {997: 6, 429: 24}
    assert sorted(clock.throttle_sleeps) == pytest.approx(_doubling(5, base))
    assert hashing.verifications == 6
    (await talk.ocs("GET", "/cloud/user", user="admin")).expect(429)


async def test_parallel_guesses_at_many_accounts_are_throttled_as_sequential_ones(app_factory: AppFactory) -> None:
    """Password spraying in parallel: checks beyond what the address could still fail wait for a
    place instead of all running at once, so 30 guesses at 30 names fare as 30 sequential ones."""
    clock, hashing = ShiftedClock(), GatedHashing()
    talk = await app_factory(clock=clock, hashing=hashing)
    base = talk.services.settings.security.bruteforce_base_delay
    guesses = [asyncio.create_task(talk.ocs("GET", "/cloud/user", user=f"user{n}", password="guess"))
               for n in range(30)]
    # Six checks (the refusal point in tests) may run while none has failed yet; the rest queue.
    await eventually(lambda: hashing.waiting == 6, "six checks admitted")
    assert not any(g.done() for g in guesses)
    hashing.gate.set()
    statuses = Counter(reply.status_code for reply in await asyncio.gather(*guesses))
    assert statuses == {997: 6, 429: 24}
    assert sorted(clock.throttle_sleeps) == pytest.approx(_doubling(5, base))
    assert hashing.verifications == 6


async def test_an_office_behind_one_address_logs_in_at_once(app_factory: AppFactory) -> None:
    """100 people's first requests at the same moment from one address, half with their password and
    half with an app password: all answered 200, none delayed, nothing counted. Checks still running
    never count against the others, even while all checking slots are held by slow hashes."""
    clock, hashing = ShiftedClock(), GatedHashing()
    talk = await app_factory(clock=clock, hashing=hashing)
    credentials = []
    for n in range(100):
        name = await talk.make_user(f"worker{n}")
        if n % 2:
            app_password = await talk.services.accounts.create_app_password(name, "office")
            credentials.append((name, app_password.password))
        else:
            credentials.append((name, talk.passwords[name]))
    hashing.verifications = 0
    logins = [asyncio.create_task(talk.ocs("GET", "/cloud/user", user=name, password=secret))
              for name, secret in credentials]
    # Hold the password checks while they fill every place the address has (six in tests): none of
    # the waiting logins may be refused or delayed meanwhile.
    await eventually(lambda: hashing.waiting == 6, "six password checks running")
    assert not any(login.done() and login.result().status_code != 200 for login in logins)
    hashing.gate.set()
    replies = await asyncio.gather(*logins)
    assert Counter(reply.status_code for reply in replies) == {200: 100}
    assert [reply.data["id"] for reply in replies] == [name for name, _ in credentials]
    assert clock.throttle_sleeps == []
    assert hashing.verifications == 50
    assert await talk.services.throttle.attempts("127.0.0.1") == 0


async def test_a_clients_parallel_first_requests_share_one_check(app_factory: AppFactory) -> None:
    """A client opening with many requests at once (cold cache): one slow check for all of them, no
    attempt counted against the others, no delay, every request answered."""
    clock, hashing = ShiftedClock(), GatedHashing()
    talk = await app_factory(clock=clock, hashing=hashing)
    await talk.make_user("alice", "alice-secret")
    hashing.verifications = 0
    authenticator = talk.services.auth
    requests = [asyncio.create_task(talk.ocs("GET", "/cloud/user", user="alice")) for _ in range(12)]
    await eventually(lambda: hashing.waiting == 1 and authenticator.shared_checks == 11, "one check, 11 sharing it")
    hashing.gate.set()
    assert {reply.status_code for reply in await asyncio.gather(*requests)} == {200}
    assert hashing.verifications == 1 and clock.throttle_sleeps == []
    assert await talk.services.throttle.attempts("127.0.0.1") == 0


@pytest.mark.parametrize("changes", [{"security__bruteforce_allowlist": ("127.0.0.0/8",)},
                                     {"security__bruteforce_enabled": False}],
                         ids=["allow-listed", "switched-off"])
async def test_exempt_clients_are_never_throttled(app_factory: AppFactory, changes: dict[str, Any]) -> None:
    clock = ShiftedClock()
    talk = await app_factory(clock=clock, **changes)
    await talk.make_user("alice", "alice-secret")
    for _ in range(10):
        (await talk.ocs("GET", "/cloud/user", user="alice", password="wrong")).expect(997)
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(200)
    assert clock.throttle_sleeps == []
    assert await talk.services.throttle.attempts("127.0.0.1") == 0


# The verified-credential cache -------------------------------------------------------------------


async def test_one_slow_hash_per_client_not_per_request(app_factory: AppFactory) -> None:
    hashing = CountingHashing()
    talk = await app_factory(hashing=hashing)
    await talk.make_user("alice", "alice-secret")
    await talk.make_user("bob", "bob-secret")
    for _ in range(5):
        (await talk.ocs("GET", "/cloud/user", user="alice")).expect(200)
        (await talk.ocs("GET", "/cloud/user", user="bob")).expect(200)
    assert hashing.verifications == 2
    for _ in range(3):  # a wrong password is never remembered
        (await talk.ocs("GET", "/cloud/user", user="alice", password="wrong")).expect(997)
    assert hashing.verifications == 5


async def test_cached_credentials_die_with_a_password_change(app_factory: AppFactory) -> None:
    hashing = CountingHashing()
    talk = await app_factory(hashing=hashing)
    await talk.make_user("alice", "old-secret")
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(200)
    await talk.services.accounts.set_password("alice", "new-secret")
    (await talk.ocs("GET", "/cloud/user", user="alice", password="old-secret")).expect(997)
    before = hashing.verifications
    for _ in range(3):
        (await talk.ocs("GET", "/cloud/user", user="alice", password="new-secret")).expect(200)
    assert hashing.verifications == before + 1


async def test_cached_credentials_die_with_disabling_and_deletion(app_factory: AppFactory) -> None:
    hashing = CountingHashing()
    talk = await app_factory(hashing=hashing)
    await talk.make_user("alice", "alice-secret")
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(200)
    await talk.services.accounts.set_enabled("alice", False)
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(997)
    await talk.services.accounts.set_enabled("alice", True)
    before = hashing.verifications
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(200)
    assert hashing.verifications == before + 1  # re-verified, not served from the old entry
    await talk.services.accounts.delete_user("alice")
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(997)


# Cookie sessions ----------------------------------------------------------------------------------

_probe = OcsRouter()


@_probe.get("/test/whoami", access=Access.PUBLIC)
async def _whoami(req: OcsRequest) -> Any:
    """What a guest route sees: its cookie session (started on first use) and its user, if any."""
    session = await req.web_session()
    return {"session": session.id, "user": req.identity.user_id}


async def _whoami_call(talk: TalkClient, *, ocs_api_request: bool) -> tuple[dict[str, Any], bool]:
    headers = {"Accept": "application/json"}
    if ocs_api_request:
        headers["OCS-APIRequest"] = "true"
    async with talk.client.get("/ocs/v2.php/test/whoami", headers=headers) as response:
        assert response.status == 200
        return (await response.json())["ocs"]["data"], SESSION_COOKIE in response.cookies


async def test_guest_cookie_session_keeps_its_identity(app_factory: AppFactory) -> None:
    talk = await app_factory(routers=(_probe,))
    first, set_cookie = await _whoami_call(talk, ocs_api_request=True)
    assert set_cookie and first["user"] is None
    for _ in range(2):
        again, set_cookie = await _whoami_call(talk, ocs_api_request=True)
        assert again == first and not set_cookie


async def test_cookie_is_ignored_on_ocs_without_ocs_apirequest(app_factory: AppFactory) -> None:
    talk = await app_factory(routers=(_probe,))
    first, _ = await _whoami_call(talk, ocs_api_request=True)
    other, set_cookie = await _whoami_call(talk, ocs_api_request=False)
    assert other["session"] != first["session"] and set_cookie


async def test_browser_login_session_counts_on_ocs_only_with_ocs_apirequest(talk: TalkClient) -> None:
    await talk.make_user("alice", "alice-secret")
    flow = await _start(talk.client)
    token = await _open_page(talk.client, flow["login"])
    await _submit(talk.client, flow["login"], {"requesttoken": token, "user": "alice", "password": "alice-secret"})
    async with talk.client.get("/ocs/v2.php/cloud/user", headers={"OCS-APIRequest": "true",
                                                                    "Accept": "application/json"}) as response:
        assert response.status == 200 and (await response.json())["ocs"]["data"]["id"] == "alice"
    async with talk.client.get("/ocs/v2.php/cloud/user", headers={"Accept": "application/json"}) as response:
        assert response.status == 401


@pytest.fixture(params=["text", "json"])
def talkd_logs(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """talkd's own logging set-up at debug level with the access log on; returns a reader of what it
    wrote. The global logging state is restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {name: logging.getLogger(name).level for name in log.QUIET_LIBRARIES}
    log.setup(level="debug", fmt=request.param, access_log=True)
    yield lambda: capsys.readouterr().err
    root.handlers[:], _, levels = saved
    root.setLevel(saved[1])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_secrets_and_session_ids_never_reach_the_logs(talk: TalkClient, talkd_logs: Callable[[], str]) -> None:
    await talk.make_user("alice", "alice-secret")
    (await talk.ocs("GET", "/cloud/user", user="alice", password="wrong-guess")).expect(997)
    flow = await _start(talk.client)
    token = await _open_page(talk.client, flow["login"])
    await _submit(talk.client, flow["login"], {"requesttoken": token, "user": "alice", "password": "alice-secret"})
    _, credentials = await _poll(talk.client, flow["poll"]["token"])
    cookie = talk.client.session.cookie_jar.filter_cookies(talk.client.make_url("/"))[SESSION_COOKIE].value
    (await talk.ocs("GET", "/cloud/user", user="alice", password=credentials["appPassword"])).expect(200)
    (await talk.ocs("GET", "/cloud/user", user="alice", password=credentials["appPassword"])).expect(200)

    logged = talkd_logs()
    assert "failed login" in logged and "/cloud/user" in logged  # talkd's and the access log's lines
    for secret in (cookie, token, flow["poll"]["token"], credentials["appPassword"], "alice-secret", "wrong-guess",
                   basic("alice", "alice-secret").split()[1]):
        assert secret not in logged
