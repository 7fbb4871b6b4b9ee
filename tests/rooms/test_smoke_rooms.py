from __future__ import annotations

from tests.helpers.client import TalkClient

V4 = "/apps/spreed/api/v4"


async def test_create_list_get_rename_delete(talk: TalkClient) -> None:
    await talk.make_user("alice")
    created = (await talk.ocs("POST", f"{V4}/room", user="alice", json={"roomType": 2, "roomName": "Team"})).expect(201)
    token = created.data["token"]
    listed = (await talk.ocs("GET", f"{V4}/room", user="alice")).expect(200)
    assert [r["token"] for r in listed.data] == [token]
    assert listed.headers["X-Nextcloud-Talk-Hash"]
    got = (await talk.ocs("GET", f"{V4}/room/{token}", user="alice")).expect(200)
    assert got.data["name"] == "Team" and got.data["participantType"] == 1
    assert got.data["lastMessage"]["systemMessage"] == "conversation_created"
    (await talk.ocs("PUT", f"{V4}/room/{token}", user="alice", params={"roomName": "Crew"})).expect(200)
    got = (await talk.ocs("GET", f"{V4}/room/{token}", user="alice")).expect(200)
    assert got.data["displayName"] == "Crew"
    assert got.data["lastMessage"]["systemMessage"] == "conversation_renamed"
    (await talk.ocs("DELETE", f"{V4}/room/{token}", user="alice")).expect(200)
    (await talk.ocs("GET", f"{V4}/room/{token}", user="alice")).expect(404)
