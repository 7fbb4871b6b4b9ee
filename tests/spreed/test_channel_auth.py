"""The Self document, resuming with ?t=, takeover, and the anonymous → registered → authenticated path
with every refusal of the nonce rules; Sessions lookups and contacts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from talkd.clock import FakeClock
from talkd.services import SERVICES
from tests.helpers.spreed import SpreedSocket, authentication, error_code, wait_closed
from tests.helpers.spreed import rest as post
from tests.spreed.conftest import SHARED_SECRET, TURN_SECRET, MakeClient


def b64_hmac(key: bytes, message: str, digest: Any = hashlib.sha256) -> str:
    return base64.b64encode(hmac.new(key, message.encode(), digest).digest()).decode()


async def register(client: TestClient, socket: SpreedSocket) -> dict[str, Any]:
    return await post(client, "POST", "/api/v1/users", {"id": socket.id, "sid": socket.me["Sid"]})


async def login(client: TestClient, socket: SpreedSocket, userid: str) -> str:
    """An external system's login: mint the combo with the shared secret, PATCH the session, get a nonce."""
    combo = f"{int(time.time()) + 3600}:{userid}"
    body = {"id": socket.id, "sid": socket.me["Sid"], "useridcombo": combo,
            "secret": b64_hmac(SHARED_SECRET.encode(), combo)}
    return str((await post(client, "PATCH", f"/api/v1/sessions/{socket.id}/", body))["nonce"])


async def test_self_on_connect_carries_ids_token_and_turn_credentials(client: TestClient) -> None:
    before = int(time.time())
    socket = await SpreedSocket.open(client)
    me = socket.me
    assert socket.self_frame["From"] == me["Id"] and "Iid" not in socket.self_frame
    assert (me["Type"], me["Userid"], me["Suserid"], me["ApiVersion"]) == ("Self", "", "", 1.4)
    assert len(me["Sid"]) == 32 and me["Sid"].isalnum() and me["Sid"] not in me["Id"]
    assert me["Token"] and me["Version"]
    assert me["Stun"] == ["stun:stun.example.org:3478"]
    turn = me["Turn"]
    expiry, _, hashed = turn["username"].partition(":")
    assert before + 3600 <= int(expiry) <= int(time.time()) + 3600
    assert hashed == base64.b64encode(hashlib.sha256(me["Id"].encode()).digest()).decode()
    assert turn["password"] == b64_hmac(TURN_SECRET.encode(), turn["username"], hashlib.sha1)
    assert turn["ttl"] == 3600 and turn["urls"] == ["turn:turn.example.org:443?transport=udp",
                                                    "turn:turn.example.org:443?transport=tcp"]


async def test_without_a_turn_secret_self_has_empty_turn_data(make_client: MakeClient) -> None:
    client = await make_client(turnsecret="")
    socket = await SpreedSocket.open(client)
    assert socket.me["Turn"] == {"username": "", "password": "", "ttl": 0, "urls": None}


async def ann_and_bob(client: TestClient) -> tuple[SpreedSocket, SpreedSocket]:
    """Two sessions authenticated as users ann and bob (contact requests need both sides logged in)."""
    ann, bob = await SpreedSocket.open(client), await SpreedSocket.open(client)
    for socket, user in ((ann, "ann"), (bob, "bob")):
        await socket.request("Authentication", authentication(user, await login(client, socket, user)))
    return ann, bob


def contact_request(to: str, request_id: str, *, echo: bool = False, success: bool = False, token: str = ""
                    ) -> dict[str, Any]:
    """A private Chat carrying only a ContactRequest."""
    request: dict[str, Any] = {"Id": request_id, "Success": success}
    if token:
        request["Token"] = token
    chat: dict[str, Any] = {"Message": "", "Status": {"ContactRequest": request}}
    if not echo:
        chat["NoEcho"] = True
    return {"To": to, "Type": "Chat", "Chat": chat}


async def test_anonymous_registered_authenticated_path(client: TestClient) -> None:
    user, peer = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await user.hello("path-room")
    await peer.hello("path-room")
    await user.next_of("Joined")
    registered = await register(client, user)
    # A returning user (or the web client) logs in again with the stored combo and secret.
    nonce = str((await post(client, "PATCH", f"/api/v1/sessions/{user.id}/", {
        "id": user.id, "sid": user.me["Sid"], "useridcombo": registered["useridcombo"],
        "secret": registered["secret"]}))["nonce"])
    reply = await user.request("Authentication", authentication(registered["userid"], nonce))
    me = reply["Data"]
    assert me["Type"] == "Self" and me["Id"] == user.id and me["Sid"] == user.me["Sid"]
    assert me["Userid"] == registered["userid"]
    assert me["Suserid"] == b64_hmac(_encryption_secret(client), registered["userid"])
    assert me["Token"] != user.me["Token"]
    status = await peer.next_of("Status")
    assert status["Data"]["Userid"] == registered["userid"] and status["Data"]["Id"] == user.id
    assert status["From"] == user.id and status["Data"]["Rev"] >= 2
    # The new token restores the authenticated session.
    await user.close()
    resumed = await SpreedSocket.open(client, me["Token"])
    assert (resumed.me["Id"], resumed.me["Sid"], resumed.me["Userid"]) == (user.id, user.me["Sid"],
                                                                          registered["userid"])


async def test_the_registration_nonce_authenticates_directly(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    registered = await register(client, socket)
    reply = await socket.request("Authentication", authentication(registered["userid"], registered["nonce"]))
    assert reply["Data"]["Userid"] == registered["userid"]


async def test_externally_minted_combo_authenticates_any_user_id(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    nonce = await login(client, socket, "dana@partner.example")
    reply = await socket.request("Authentication", authentication("dana@partner.example", nonce))
    assert reply["Data"]["Userid"] == "dana@partner.example"


async def test_wrong_or_absent_nonce_is_refused(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    assert error_code(await socket.request("Authentication", authentication("eve", "made-up"))) \
        == "invalid_session_token"
    nonce = await login(client, socket, "eve")
    assert error_code(await socket.request("Authentication", authentication("eve", nonce + "x"))) \
        == "invalid_session_token"
    assert error_code(await socket.request("Authentication", authentication("mallory", nonce))) \
        == "invalid_session_token"
    assert (await socket.request("Authentication", authentication("eve", nonce)))["Data"]["Userid"] == "eve"


async def test_a_used_nonce_cannot_be_used_again(client: TestClient) -> None:
    first = await SpreedSocket.open(client)
    nonce = await login(client, first, "eve")
    await first.request("Authentication", authentication("eve", nonce))
    assert error_code(await first.request("Authentication", authentication("eve", nonce))) \
        == "already_authenticated"
    second = await SpreedSocket.open(client)
    assert error_code(await second.request("Authentication", authentication("eve", nonce))) \
        == "invalid_session_token"


async def test_a_superseded_nonce_is_refused(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    old = await login(client, socket, "eve")
    new = await login(client, socket, "eve")
    assert error_code(await socket.request("Authentication", authentication("eve", old))) == "invalid_session_token"
    assert (await socket.request("Authentication", authentication("eve", new)))["Data"]["Userid"] == "eve"


async def test_a_nonce_of_another_session_is_refused(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    nonce_a = await login(client, a, "eve")
    await login(client, b, "eve")
    assert error_code(await b.request("Authentication", authentication("eve", nonce_a))) == "invalid_session_token"
    assert (await a.request("Authentication", authentication("eve", nonce_a)))["Data"]["Userid"] == "eve"


async def test_an_expired_nonce_is_refused(client: TestClient) -> None:
    clock = FakeClock(time.time())
    client.app[SERVICES].spreed.clock = clock
    socket = await SpreedSocket.open(client)
    nonce = await login(client, socket, "eve")
    clock.advance(61)
    assert error_code(await socket.request("Authentication", authentication("eve", nonce))) \
        == "invalid_session_token"
    assert (await socket.request("Self", {}))["Data"]["Userid"] == ""


async def test_authentication_without_its_document_is_a_bad_request(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    assert error_code(await socket.request("Authentication", None)) == "bad_request"
    assert error_code(await socket.request("Authentication", {"Type": "Authentication"})) == "bad_request"


# --- resume and takeover ---------------------------------------------------------------------------------------

async def test_resume_with_token_keeps_id_and_sid(client: TestClient) -> None:
    first = await SpreedSocket.open(client)
    await first.close()
    await wait_closed(client, first.id)
    second = await SpreedSocket.open(client, first.me["Token"])
    assert (second.me["Id"], second.me["Sid"]) == (first.id, first.me["Sid"])


async def test_an_undecodable_token_silently_starts_a_new_session(client: TestClient) -> None:
    socket = await SpreedSocket.open(client, "not-a-valid-token")
    assert socket.me["Type"] == "Self" and socket.me["Token"] != "not-a-valid-token"


async def test_a_second_connection_takes_the_session_over_without_left(client: TestClient) -> None:
    old, peer = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await old.hello("takeover")
    await peer.hello("takeover")
    await old.next_of("Joined")
    new = await SpreedSocket.open(client, old.me["Token"])
    assert new.id == old.id
    closing = await old.ws.receive(timeout=5)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)
    await peer.send("Offer", {"To": old.id, "Type": "Offer", "Offer": {"sdp": "x", "type": "offer"}})
    assert (await new.recv())["From"] == peer.id  # relays now reach the new socket
    assert all(f["Data"]["Type"] != "Left" for f in await peer.drain())


async def test_userid_in_a_token_is_ignored_when_users_are_disabled(make_client: MakeClient) -> None:
    users = await make_client()
    socket = await SpreedSocket.open(users)
    registered = await register(users, socket)
    authed = await socket.request("Authentication", authentication(registered["userid"], registered["nonce"]))
    # Same data dir, so the same kept secrets: the token opens on the second server, the user id does not count.
    no_users = await make_client(users_mode="")
    resumed = await SpreedSocket.open(no_users, authed["Data"]["Token"])
    assert resumed.me["Id"] == socket.id and resumed.me["Userid"] == ""


async def test_httpheader_mode_authenticates_at_connect(make_client: MakeClient) -> None:
    client = await make_client(users_mode="httpheader")
    socket = await SpreedSocket.open(client, headers={"X-Users": "frank"})
    assert socket.me["Userid"] == "frank"
    anonymous = await SpreedSocket.open(client)
    assert anonymous.me["Userid"] == ""


# --- Sessions -------------------------------------------------------------------------------------------------

async def test_sessions_resolves_an_attestation_to_its_session(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("s-room")
    await b.hello("s-room", ua="ua-b")
    joined = await a.next_of("Joined")  # carries b's attestation
    request = {"Type": "Sessions", "Sessions": {"Type": "session", "Token": joined["A"]}}
    reply = await a.request("Sessions", request)
    assert reply["Data"]["Type"] == "Sessions"
    assert reply["Data"]["Sessions"] == {"Type": "session", "Token": joined["A"]}
    assert reply["Data"]["Users"] == [{"Type": "", "Id": b.id, "Ua": "ua-b", "Rev": 1, "Prio": 100}]


async def test_sessions_errors(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("s-room")
    await b.hello("s-room")
    joined = await a.next_of("Joined")
    sessions = {"Type": "Sessions", "Sessions": {"Type": "session", "Token": "forged"}}
    assert error_code(await a.request("Sessions", sessions)) == "bad_attestation"
    await b.close()
    await wait_closed(client, b.id)
    sessions["Sessions"]["Token"] = joined["A"]
    assert error_code(await a.request("Sessions", sessions)) == "no_such_session"
    sessions["Sessions"]["Type"] = "teleport"
    assert error_code(await a.request("Sessions", sessions)) == "bad_request"
    assert error_code(await a.request("Sessions", None)) == "bad_request"


async def test_contact_request_mints_a_token_that_lists_the_contacts_sessions(client: TestClient) -> None:
    ann, bob = await ann_and_bob(client)
    await ann.send("Chat", contact_request(bob.id, "cr-1"))
    received = (await bob.next_of("Chat"))["Data"]["Chat"]["Status"]["ContactRequest"]
    assert received["Userid"] == "ann" and received["Token"] and received["Success"] is False
    await bob.send("Chat", contact_request(ann.id, "cr-1", success=True, token=received["Token"]))
    accepted = (await ann.next_of("Chat"))["Data"]["Chat"]["Status"]["ContactRequest"]
    assert accepted["Success"] is True and accepted["Userid"] == "bob"
    listing = await ann.request("Sessions", {"Type": "Sessions", "Sessions": {"Type": "contact",
                                                                              "Token": accepted["Token"]}})
    assert [u["Id"] for u in listing["Data"]["Users"]] == [bob.id]
    assert listing["Data"]["Users"][0]["Userid"] == "bob"
    await bob.close()  # linked contacts hear the hard Left even outside a room
    left = await ann.next_of("Left")
    assert left["Data"] == {"Type": "Left", "Id": bob.id, "Status": "hard"}


async def test_a_refusal_reaches_the_requester_without_its_token(client: TestClient) -> None:
    ann, bob = await ann_and_bob(client)
    await ann.send("Chat", contact_request(bob.id, "cr-no"))
    token = (await bob.next_of("Chat"))["Data"]["Chat"]["Status"]["ContactRequest"]["Token"]
    await bob.send("Chat", contact_request(ann.id, "cr-no", token=token))
    refusal = (await ann.next_of("Chat"))["Data"]["Chat"]["Status"]["ContactRequest"]
    assert refusal["Success"] is False and "Token" not in refusal


async def test_an_acceptance_with_a_forged_or_mismatched_token_is_dropped(client: TestClient) -> None:
    ann, bob = await ann_and_bob(client)
    await ann.send("Chat", contact_request(bob.id, "cr-x"))
    token = (await bob.next_of("Chat"))["Data"]["Chat"]["Status"]["ContactRequest"]["Token"]
    await bob.send("Chat", contact_request(ann.id, "cr-x", success=True, token="forged"))
    await ann.send("Chat", contact_request(bob.id, "cr-x", success=True, token=token))  # accepting her own request
    assert await ann.drain() == [] and await bob.drain() == []


async def test_a_contact_request_to_oneself_is_dropped(client: TestClient) -> None:
    ann, other_ann = await SpreedSocket.open(client), await SpreedSocket.open(client)
    for socket in (ann, other_ann):
        await socket.request("Authentication", authentication("ann", await login(client, socket, "ann")))
    await ann.send("Chat", contact_request(other_ann.id, "cr-self"))
    assert await other_ann.drain() == []


async def test_contact_sessions_need_a_token_naming_the_requester(client: TestClient) -> None:
    ann, bob = await ann_and_bob(client)
    carol = await SpreedSocket.open(client)
    await carol.request("Authentication", authentication("carol", await login(client, carol, "carol")))
    await ann.send("Chat", contact_request(bob.id, "cr-c"))
    token = (await bob.next_of("Chat"))["Data"]["Chat"]["Status"]["ContactRequest"]["Token"]
    for foreign in ("garbage", token):
        request = {"Type": "Sessions", "Sessions": {"Type": "contact", "Token": foreign}}
        assert error_code(await carol.request("Sessions", request)) == "bad_request"


async def test_contact_requests_need_authenticated_sessions(client: TestClient) -> None:
    ann, bob = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await ann.send("Chat", contact_request(bob.id, "cr"))
    assert await bob.drain() == []


async def test_contact_sessions_need_the_contacts_module(make_client: MakeClient) -> None:
    client = await make_client(modules=("screensharing",))
    socket = await SpreedSocket.open(client)
    reply = await socket.request("Sessions", {"Type": "Sessions", "Sessions": {"Type": "contact", "Token": "x"}})
    assert error_code(reply) == "contacts_not_enabled"


def _encryption_secret(client: TestClient) -> bytes:
    """The secret kept in the data dir (generated on first start): what an operator would read there."""
    settings = client.app[SERVICES].settings
    return bytes.fromhex((settings.storage.data_dir / "webrtc-encryption-secret").read_text().strip())


async def test_echo_of_a_contact_request_carries_no_minted_token(client: TestClient) -> None:
    """The original echoes the Chat as sent, before minting (handle_chat.go): a requester who asked for
    an echo must not obtain the contact token unless the other side accepts and sends it back."""
    ann, bob = await ann_and_bob(client)
    await ann.send("Chat", contact_request(bob.id, "cr-echo", echo=True))
    echo = await ann.next_of("Chat")
    assert echo["To"] == ann.id
    assert echo["Data"]["Chat"]["Status"]["ContactRequest"] == {"Id": "cr-echo", "Success": False}
    received = (await bob.next_of("Chat"))["Data"]["Chat"]["Status"]["ContactRequest"]
    assert received["Token"] and received["Userid"] == "ann"


async def test_an_ignored_contact_request_is_still_echoed(client: TestClient) -> None:
    """The echo goes out before the contact request is checked (handle_chat.go); the refused request
    itself reaches nobody."""
    ann, bob = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await ann.send("Chat", contact_request(bob.id, "cr-anon", echo=True))
    echo = await ann.next_of("Chat")
    assert echo["Data"]["Chat"]["Status"]["ContactRequest"] == {"Id": "cr-anon", "Success": False}
    assert await bob.drain() == []


async def test_sessions_of_an_offline_contact_is_a_stable_placeholder(client: TestClient) -> None:
    """For a contact with no connected session the original answers with one placeholder session for that
    user id (session_manager.go GetUserSessions), which the web client needs to open a chat from its
    contact list; the same placeholder comes back each time."""
    ann, bob = await ann_and_bob(client)
    await ann.send("Chat", contact_request(bob.id, "cr-off"))
    token = (await bob.next_of("Chat"))["Data"]["Chat"]["Status"]["ContactRequest"]["Token"]
    await bob.close()
    await wait_closed(client, bob.id)
    request = {"Type": "Sessions", "Sessions": {"Type": "contact", "Token": token}}
    first = (await ann.request("Sessions", request))["Data"]["Users"]
    assert len(first) == 1 and first[0]["Id"] not in (bob.id, ann.id)
    assert first[0] == {"Type": "", "Id": first[0]["Id"], "Userid": "bob", "Prio": 100}
    assert (await ann.request("Sessions", request))["Data"]["Users"] == first


async def test_left_to_linked_contacts_has_the_room_broadcast_envelope(client: TestClient) -> None:
    """The original sends linked contacts the very frame it broadcasts to the room (session.go Close):
    From and A of the leaver, no To."""
    ann, bob = await ann_and_bob(client)
    await ann.send("Chat", contact_request(bob.id, "cr-left"))
    token = (await bob.next_of("Chat"))["Data"]["Chat"]["Status"]["ContactRequest"]["Token"]
    await ann.request("Sessions", {"Type": "Sessions", "Sessions": {"Type": "contact", "Token": token}})
    await bob.close()
    left = await ann.next_of("Left")
    assert left["From"] == bob.id and left["A"] and "To" not in left and "Iid" not in left
