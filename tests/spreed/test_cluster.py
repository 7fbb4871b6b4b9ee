"""Two talkd nodes on one real NATS: a room spread over both still relays, broadcasts and takes over
sessions, because rooms and sessions reach each other only through the bus; and each node lists, counts
and guards (PIN) the members the other node announced in the room directory.

NATS: TALKD_TEST_NATS_URL (default nats://127.0.0.1:4222); skipped locally without one, required in CI."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from talkd.app import build_services, create_app
from talkd.clock import FakeClock
from talkd.crypto import fast_password_hashing
from talkd.services import SERVICES
from talkd.spreed.directory import NODE_TIMEOUT
from talkd.storage.database import Database
from tests.helpers.cluster import Node
from tests.helpers.spreed import SpreedSocket, authentication, error_code, eventually, wait_closed
from tests.helpers.spreed import rest as post


@pytest.fixture
def nodes(two_nodes: list[Node]) -> tuple[TestClient, TestClient]:
    return two_nodes[0].client, two_nodes[1].client


async def test_a_room_spread_over_two_nodes_relays_and_broadcasts(nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    a, c = await SpreedSocket.open(one), await SpreedSocket.open(one)
    b = await SpreedSocket.open(two)
    for socket in (a, c, b):
        await socket.hello("spread")
    joined = await a.next_of("Joined")
    assert joined["Data"]["Id"] in (c.id, b.id)
    await a.send("Offer", {"To": b.id, "Type": "Offer", "Offer": {"sdp": "x", "type": "offer"}})
    offer = await b.next_of("Offer")
    assert offer["From"] == a.id and offer["To"] == b.id
    await b.send("Answer", {"To": a.id, "Type": "Answer", "Answer": {"sdp": "y", "type": "answer"}})
    assert (await a.next_of("Answer"))["From"] == b.id
    assert all(f["Data"]["Type"] not in ("Offer", "Answer") for f in await c.drain())
    await b.send("Chat", {"To": "", "Type": "Chat", "Chat": {"Message": "across nodes", "NoEcho": True}})
    for socket in (a, c):
        assert (await socket.next_of("Chat"))["Data"]["Chat"]["Message"] == "across nodes"
    await b.close()
    assert (await a.next_of("Left"))["Data"] == {"Type": "Left", "Id": b.id, "Status": "hard"}


async def test_resuming_on_another_node_takes_the_session_over(nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    old = await SpreedSocket.open(one)
    new = await SpreedSocket.open(two, old.me["Token"])
    assert new.id == old.id
    closing = await old.ws.receive(timeout=5)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)
    peer = await SpreedSocket.open(one)
    await peer.send("Offer", {"To": new.id, "Type": "Offer", "Offer": {"sdp": "z", "type": "offer"}})
    assert (await new.next_of("Offer"))["From"] == peer.id


# --- the room directory: every node knows every node's members and PINs ---------------------------------------

async def replicated(client: TestClient, room_id: str, *ids: str, pin: str | None = None) -> None:
    """Wait until `client`'s node lists `ids` in the room (and knows its PIN when given)."""
    directory = client.app[SERVICES].spreed.directory

    def known() -> bool:
        room = directory.get(room_id if ":" in room_id else f"Room:{room_id}")
        return room is not None and set(ids) <= set(room.member_ids()) and (pin is None or room.pin == pin)
    await eventually(known, f"{room_id} lists {ids} on this node")


def listed(frame: dict[str, Any]) -> set[str]:
    return {user["Id"] for user in frame["Data"]["Users"]}


async def test_welcome_and_users_list_the_members_of_every_node(nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    a = await SpreedSocket.open(one)
    await a.send("Status", {"Type": "Status", "Status": {"displayName": "Ann"}})
    await a.hello("everyone")
    await replicated(two, "everyone", a.id)
    b = await SpreedSocket.open(two)
    welcome = await b.hello("everyone")
    assert listed(welcome) == {a.id, b.id}
    remote_a = next(user for user in welcome["Data"]["Users"] if user["Id"] == a.id)
    assert remote_a["Ua"] == "test" and remote_a["Status"] == {"displayName": "Ann"}
    await replicated(one, "everyone", b.id)
    assert listed(await a.request("Users")) == {a.id, b.id}


async def test_a_status_change_on_one_node_shows_in_the_other_nodes_list(
        nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    a, b = await SpreedSocket.open(one), await SpreedSocket.open(two)
    await a.hello("status")
    await b.hello("status")
    await a.send("Status", {"Type": "Status", "Status": {"displayName": "Renamed"}})
    assert (await b.next_of("Status"))["Data"]["Status"] == {"displayName": "Renamed"}

    async def renamed() -> bool:
        users = (await b.request("Users"))["Data"]["Users"]
        return bool(next(u for u in users if u["Id"] == a.id).get("Status") == {"displayName": "Renamed"})
    await eventually(renamed, "node two lists the new status")


async def test_a_pin_set_on_one_node_guards_the_room_on_the_other(nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    a = await SpreedSocket.open(one)
    await a.hello("locked", pin="7")
    await replicated(two, "locked", a.id, pin="7")
    b = await SpreedSocket.open(two)
    assert error_code(await b.hello("locked")) == "authorization_required"
    assert error_code(await b.hello("locked", pin="8")) == "invalid_credentials"
    assert (await b.hello("locked", pin="7"))["Data"]["Type"] == "Welcome"
    await a.request("Room", {"Name": "locked", "Type": "Room", "Credentials": {"PIN": ""}})  # removes the PIN
    await replicated(two, "locked", a.id, b.id)
    room = two.app[SERVICES].spreed.directory.get("Room:locked")
    await eventually(lambda: room.pin is None, "node two forgets the removed PIN")
    c = await SpreedSocket.open(two)
    assert (await c.hello("locked"))["Data"]["Type"] == "Welcome"


async def test_leaving_on_one_node_removes_the_member_on_the_other(nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    a, b = await SpreedSocket.open(one), await SpreedSocket.open(two)
    await a.hello("leaving")
    await b.hello("leaving")
    await replicated(two, "leaving", a.id)
    await a.send("Leave", {})
    await b.next_of("Left")

    async def only_b() -> bool:
        return listed(await b.request("Users")) == {b.id}
    await eventually(only_b, "node two drops the member that left")


async def test_sessions_resolves_an_attestation_of_a_session_on_another_node(
        nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    a, b = await SpreedSocket.open(one), await SpreedSocket.open(two)
    await b.hello("attest")
    await a.hello("attest")
    joined = await b.next_of("Joined")
    await replicated(two, "attest", a.id)
    reply = await b.request("Sessions", {"Type": "Sessions", "Sessions": {"Type": "session", "Token": joined["A"]}})
    assert [user["Id"] for user in reply["Data"]["Users"]] == [a.id]


async def test_a_managed_conference_spans_both_nodes(nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    a, b = await SpreedSocket.open(one), await SpreedSocket.open(two)
    await a.hello("conf-cluster")
    await replicated(two, "Conference:conf-cluster", a.id)
    await b.hello("conf-cluster")
    for socket in (a, b):
        conference = await socket.next_of("Conference")
        assert set(conference["Data"]["Conference"]) == {a.id, b.id}


async def test_a_node_started_later_learns_the_rooms_from_a_snapshot(
        two_nodes: list[Node], db: Database, aiohttp_client: AiohttpClient) -> None:
    one = two_nodes[0].client
    a = await SpreedSocket.open(one)
    await a.hello("before", pin="42")
    services = await build_services(two_nodes[0].services.settings, db=db, hashing=fast_password_hashing())
    try:
        late = await aiohttp_client(create_app(services))
        await replicated(late, "before", a.id, pin="42")
        c = await SpreedSocket.open(late)
        assert error_code(await c.hello("before")) == "authorization_required"
        assert listed(await c.hello("before", pin="42")) == {a.id, c.id}
    finally:
        await services.bus.close()


async def test_members_of_a_node_that_went_silent_are_dropped(nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    directory = two.app[SERVICES].spreed.directory
    directory.clock = clock = FakeClock(time.time())  # node two's sense of time only
    a, b = await SpreedSocket.open(one), await SpreedSocket.open(two)
    await a.hello("silent")
    await replicated(two, "silent", a.id)
    await b.hello("silent")
    clock.advance(NODE_TIMEOUT + 1)  # node one's last word is now too old
    directory.prune()
    assert listed(await b.request("Users")) == {b.id}
    assert directory.get("Room:silent").remote == {}


# --- REST calls reaching another node than the socket ----------------------------------------------------------

async def peers_known(*clients: TestClient) -> None:
    for client in clients:
        await eventually(client.app[SERVICES].spreed.directory.has_peers, "the nodes hear of each other")


async def test_registration_and_login_on_another_node_authenticate_the_socket(
        nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    await peers_known(one, two)
    socket = await SpreedSocket.open(one)
    registered = await post(two, "POST", "/api/v1/users", {"id": socket.id, "sid": socket.me["Sid"]})
    again = await post(two, "PATCH", f"/api/v1/sessions/{socket.id}/", {
        "id": socket.id, "sid": socket.me["Sid"], "useridcombo": registered["useridcombo"],
        "secret": registered["secret"]})
    assert again["userid"] == registered["userid"]
    # The later nonce superseded the registration's, on the socket's node.
    refused = await socket.request("Authentication", authentication(registered["userid"], registered["nonce"]))
    assert refused["Data"]["Code"] == "invalid_session_token"
    reply = await socket.request("Authentication", authentication(registered["userid"], again["nonce"]))
    assert reply["Data"]["Type"] == "Self" and reply["Data"]["Userid"] == registered["userid"]


async def test_another_node_refuses_authenticated_unknown_or_mismatched_sessions(
        nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    await peers_known(one, two)
    socket = await SpreedSocket.open(one)
    registered = await post(two, "POST", "/api/v1/users", {"id": socket.id, "sid": socket.me["Sid"]})
    await socket.request("Authentication", authentication(registered["userid"], registered["nonce"]))
    async with two.post("/api/v1/users", json={"id": socket.id, "sid": socket.me["Sid"]}) as response:
        assert response.status == 400 and (await response.json())["code"] == "users_request_failed"
    gone = await SpreedSocket.open(one)
    await gone.close()
    await wait_closed(one, gone.id)
    body = {"id": gone.id, "sid": gone.me["Sid"], "useridcombo": registered["useridcombo"],
            "secret": registered["secret"]}
    async with two.patch(f"/api/v1/sessions/{gone.id}/", json=body) as response:
        assert response.status == 403 and (await response.json())["code"] == "session_patch_failed"
