"""Nextcloud and Talk versions talkd presents, and the capability registry features add to.

`spreed.features` lists only what is implemented: each feature module registers its names when its
routes are installed, so the list cannot claim more than the server serves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from talkd import __version__

NEXTCLOUD_VERSION = (30, 0, 0, 0)
NEXTCLOUD_VERSION_STRING = "30.0.0"
TALK_VERSION = "20.1.0"


def nextcloud_version() -> dict[str, Any]:
    major, minor, micro, _ = NEXTCLOUD_VERSION
    return {"major": major, "minor": minor, "micro": micro, "string": NEXTCLOUD_VERSION_STRING,
            "edition": "", "extendedSupport": False}


@dataclass
class Capabilities:
    """Talk's `spreed` capability: features plus `config` sections, filled in by feature modules."""

    features: list[str] = field(default_factory=list)
    config: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_features(self, *names: str) -> None:
        for name in names:
            if name not in self.features:
                self.features.append(name)

    def set_config(self, section: str, key: str, value: Any) -> None:
        self.config.setdefault(section, {})[key] = value

    def spreed(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "features-local": [],
            "config": {section: dict(values) for section, values in self.config.items()},
            "version": TALK_VERSION,
        }

    def document(self) -> dict[str, Any]:
        """The data of GET /ocs/v{1,2}.php/cloud/capabilities."""
        return {
            "version": nextcloud_version(),
            "capabilities": {
                "core": {
                    "pollinterval": 60,
                    "webdav-root": "remote.php/webdav",
                    "reference-api": False,
                    "reference-regex": "",
                    "mod-rewrite-working": False,
                },
                "talkd": {"version": __version__},
                "spreed": self.spreed(),
            },
        }
