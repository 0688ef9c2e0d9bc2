"""Transport: HTTP, SSE and WebSocket I/O for every system. Importing the package loads each
system's client module, so each registers its client classes (_base_client.CLIENTS)."""

from . import _client, _dify, _odyssey, _pipelit  # noqa: F401
