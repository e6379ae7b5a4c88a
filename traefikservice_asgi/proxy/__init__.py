"""The leaf of every service tree: one server, over HTTP (:mod:`.http`) or as a
WebSocket (:mod:`.websocket`)."""

from .http import Server, UpstreamAborted
from .websocket import forward_websocket, http_responses_as_websocket

__all__ = ["Server", "UpstreamAborted", "forward_websocket", "http_responses_as_websocket"]
