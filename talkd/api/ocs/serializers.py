"""How domain objects look on the OCS wire. THE place where API versions differ."""

from __future__ import annotations

from typing import Any

from talkd.domain.model import User
from talkd.domain.signaling_settings import SignalingConfiguration
from talkd.ids import GroupId

# Nextcloud's default visibility of each profile property, shown to a user looking at themself.
_SCOPES = {
    "avatar": "v2-federated", "email": "v2-federated", "additional_mail": [], "displayname": "v2-federated",
    "phone": "v2-local", "address": "v2-local", "website": "v2-local", "twitter": "v2-local",
    "fediverse": "v2-local", "organisation": "v2-local", "role": "v2-local", "headline": "v2-local",
    "biography": "v2-local", "profile_enabled": "v2-local", "pronouns": "v2-federated",
}
_PROFILE = ("phone", "address", "website", "twitter", "fediverse", "organisation", "role", "headline",
            "biography", "profile_enabled", "pronouns")


def user_data(user: User, groups: list[GroupId], *, viewer_is_admin: bool, is_self: bool) -> dict[str, Any]:
    """A user as cloud/user and cloud/users/{id} describe it (Nextcloud's AUserDataOCSController):
    `enabled` and `storageLocation` only for admins, the `...Scope` fields only for oneself."""
    data: dict[str, Any] = {}
    if viewer_is_admin:
        data["enabled"] = user.enabled
        data["storageLocation"] = ""
    data.update({
        "id": user.id,
        "lastLogin": user.last_login * 1000,
        "backend": "Database",
        "subadmin": [],
        "quota": {"quota": "none", "used": 0, "free": -3, "total": -3, "relative": 0},
        "manager": "",
    })
    scoped: dict[str, Any] = {
        "email": user.email,
        "additional_mail": [],
        "displayname": user.display_name,
    }
    profile: dict[str, Any] = {name: "" for name in _PROFILE}
    profile["profile_enabled"] = "1"
    if is_self:
        data["avatarScope"] = _SCOPES["avatar"]
    for name, value in {**scoped, **profile}.items():
        data[name] = value
        if name == "displayname":
            data["display-name"] = value
        if is_self:
            data[f"{name}Scope"] = _SCOPES[name]
    data.update({
        "groups": list(groups),
        "language": "en",
        "locale": "",
        "notify_email": None,
        "backendCapabilities": {"setDisplayName": True, "setPassword": True},
    })
    return data


# Signaling settings (GET /signaling/settings) -----------------------------------------------------


def stun_servers_v1(config: SignalingConfiguration) -> list[dict[str, Any]]:
    """v1 and v2: one entry per server, its URL a plain string under `url`."""
    return [{"url": url} for url in config.stun_urls]


def turn_servers_v1(config: SignalingConfiguration) -> list[dict[str, Any]]:
    """v1 and v2: one entry per URL, under both `url` and `urls` as one-element arrays."""
    return [{"url": [url], "urls": [url], "username": server.username, "credential": server.credential}
            for server in config.turn_servers for url in server.urls]


def stun_servers_v3(config: SignalingConfiguration) -> list[dict[str, Any]]:
    """v3: one entry holding every STUN URL (as Talk answers); none at all when none is configured,
    since an ICE server entry with no URL makes browsers reject the whole configuration."""
    urls = config.stun_urls
    return [{"urls": urls}] if urls else []


def turn_servers_v3(config: SignalingConfiguration) -> list[dict[str, Any]]:
    """v3: one entry per server with all its scheme/transport URLs."""
    return [{"urls": server.urls, "username": server.username, "credential": server.credential}
            for server in config.turn_servers]


def signaling_settings_data(config: SignalingConfiguration, api_version: int) -> dict[str, Any]:
    """The settings in the shape of API v1, v2 or v3; `sipDialinInfo` exists from v2 on."""
    modern = api_version >= 3
    data: dict[str, Any] = {
        "signalingMode": config.mode,
        "userId": config.user_id,
        "hideWarning": config.hide_warning,
        "server": config.server,
        "ticket": config.ticket,
        "stunservers": stun_servers_v3(config) if modern else stun_servers_v1(config),
        "turnservers": turn_servers_v3(config) if modern else turn_servers_v1(config),
    }
    if api_version >= 2:
        data["sipDialinInfo"] = config.sip_dialin_info
    return data
