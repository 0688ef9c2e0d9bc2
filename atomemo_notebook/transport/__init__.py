"""Transport: HTTP, SSE and WebSocket I/O for every system. Importing the package loads each
system's client module, so each registers its client classes (base_client.CLIENTS)."""

from . import client, dify, odyssey, pipelit  # noqa: F401
