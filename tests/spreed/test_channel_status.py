"""Status broadcasts with revisions, buddy pictures replaced by image references, and the image route."""

from __future__ import annotations

import base64
import datetime
import email.utils

from aiohttp.test_utils import TestClient

from tests.helpers.spreed import SpreedSocket, wait_closed

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def data_url(mime: str, raw: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


async def pair(client: TestClient) -> tuple[SpreedSocket, SpreedSocket]:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("status-room")
    await b.hello("status-room")
    await a.next_of("Joined")
    return a, b


async def test_status_is_broadcast_with_a_growing_revision(client: TestClient) -> None:
    a, b = await pair(client)
    await a.send("Status", {"Type": "Status", "Status": {"displayName": "Ann", "message": "hi"}})
    first = await b.recv()
    assert first["From"] == a.id and first["A"]
    assert first["Data"] == {"Type": "Status", "Id": a.id, "Status": {"displayName": "Ann", "message": "hi"},
                             "Rev": 2, "Prio": 100}
    await a.send("Status", {"Type": "Status", "Status": {"displayName": "Ann B."}})
    assert (await b.recv())["Data"]["Rev"] == 3
    assert await a.drain() == []  # no echo


async def test_status_outside_a_room_is_kept_but_not_broadcast(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await b.hello("status-room")
    await a.send("Status", {"Type": "Status", "Status": {"displayName": "early"}})
    assert await b.drain() == []
    await a.hello("status-room")
    assert (await b.recv())["Data"]["Status"] == {"displayName": "early"}  # in Joined


async def test_buddy_picture_becomes_an_image_reference_served_by_the_image_route(client: TestClient) -> None:
    a, b = await pair(client)
    await a.send("Status", {"Type": "Status", "Status": {"displayName": "Ann",
                                                         "buddyPicture": data_url("image/png", PNG)}})
    picture = (await b.recv())["Data"]["Status"]["buddyPicture"]
    assert picture.startswith("img:") and picture.endswith("/picture.png")
    image_id, change_id, _ = picture[4:].split("/")
    assert len(image_id) == 20
    async with client.get(f"/static/img/buddy/s46/{picture[4:]}") as response:
        assert response.status == 200 and await response.read() == PNG
        assert response.headers["Content-Type"] == "image/png" and response.headers["ETag"] == change_id
        assert "max-age=86400" in response.headers["Cache-Control"]
    async with client.get(f"/static/img/buddy/s46/{picture[4:]}", headers={"If-None-Match": change_id}) as response:
        assert response.status == 304
    # A new picture keeps the image id and changes the change id.
    await a.send("Status", {"Type": "Status", "Status": {"buddyPicture": data_url("image/gif", b"GIF89a...")}})
    second = (await b.recv())["Data"]["Status"]["buddyPicture"]
    assert second.startswith(f"img:{image_id}/") and second.endswith("/picture.gif") and second != picture
    async with client.get(f"/static/img/buddy/s46/{image_id}/x/y") as response:
        assert await response.read() == b"GIF89a..." and response.headers["Content-Type"] == "image/gif"


async def test_image_route_sends_last_modified_and_expires_and_honours_if_modified_since(
        client: TestClient) -> None:
    """The original serves pictures with http.ServeContent and an Expires header (handler_image.go):
    Last-Modified is the change time, Expires a day after it was served, If-Modified-Since answers 304."""
    a, b = await pair(client)
    await a.send("Status", {"Type": "Status", "Status": {"buddyPicture": data_url("image/png", PNG)}})
    url = "/static/img/buddy/s46/" + (await b.recv())["Data"]["Status"]["buddyPicture"][4:]
    async with client.get(url) as response:
        assert response.status == 200
        modified = email.utils.parsedate_to_datetime(response.headers["Last-Modified"])
        expires = email.utils.parsedate_to_datetime(response.headers["Expires"])
        assert expires - modified >= datetime.timedelta(hours=24)
    async with client.get(url, headers={"If-Modified-Since": response.headers["Last-Modified"]}) as response:
        assert response.status == 304 and await response.read() == b""
    earlier = email.utils.format_datetime(modified - datetime.timedelta(seconds=1), usegmt=True)
    async with client.get(url, headers={"If-Modified-Since": earlier}) as response:
        assert response.status == 200 and await response.read() == PNG


async def test_non_image_data_urls_are_neither_stored_nor_relayed(client: TestClient) -> None:
    a, b = await pair(client)
    html = data_url("text/html", b"<script>alert(1)</script>")
    await a.send("Status", {"Type": "Status", "Status": {"displayName": "x", "buddyPicture": html}})
    assert (await b.recv())["Data"]["Status"] == {"displayName": "x"}


async def test_unknown_image_is_a_plain_404_and_images_go_with_their_session(client: TestClient) -> None:
    async with client.get("/static/img/buddy/s46/AAAAAAAAAAAAAAAAAAAA/x/picture.png") as response:
        assert response.status == 404 and await response.text() == "Unknown image"
    a, b = await pair(client)
    await a.send("Status", {"Type": "Status", "Status": {"buddyPicture": data_url("image/png", PNG)}})
    picture = (await b.recv())["Data"]["Status"]["buddyPicture"]
    await a.close()
    await wait_closed(client, a.id)
    async with client.get(f"/static/img/buddy/s46/{picture[4:]}") as response:
        assert response.status == 404
