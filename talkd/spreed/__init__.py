"""Spreed WebRTC compatibility: REST API v1 and the channelling WebSocket, a vertical slice."""
