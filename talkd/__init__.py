"""talkd: a self-hosted chat and video-call server that speaks Nextcloud Talk's API."""

__version__ = "0.1.0"
