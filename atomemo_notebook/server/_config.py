"""How the embedded server behaves."""

from __future__ import annotations

import dataclasses
import secrets


@dataclasses.dataclass
class ServerConfig:
    """How the embedded server behaves. Every field has a demo-friendly default."""

    api_key: str = dataclasses.field(default_factory=lambda: "sk-local-" + secrets.token_urlsafe(18))
    db: str = ":memory:"
    resume_window: float = 120.0  # seconds a finished stream stays resumable
    heartbeat_interval: float = 15.0
    chunk_size: int = 8  # characters per chat_message
    chunk_delay: float = 0.015  # seconds between chat_message events
    node_delay: float = 0.08  # seconds a node (and a tool call) takes
    test_mode: bool = False  # honour X-Atomemo-Fault / X-Atomemo-Pace
    allow_loopback_urls: bool = False  # let /chat/media/upload fetch loopback and private addresses
    allowed_url_origins: tuple[str, ...] = ()  # "host:port" fetched even if not public (tests)
    url_fetch_timeout: float = 15.0  # seconds for a whole upload by URL, redirects included
    max_upload_bytes: int = 20 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    token_ttl: float = 900.0  # upload tokens and download URLs
    # Dify's timings, as Dify 1.13 keeps them (tests shorten them): a `ping` every 10 s of a
    # run, the stream closed 1 s after the run's end, and a question into a conversation it
    # does not know answered with one ping and silence until its relay gives up at 300 s.
    dify_ping_interval: float = 10.0
    dify_close_delay: float = 1.0
    dify_unknown_close: float = 300.0
    # Pipelit 0.3.16 forwards at most one WebSocket frame per 50 ms per socket (its Redis
    # listener sleeps after each message); tests set 0.
    pipelit_frame_gap: float = 0.05
    # The sampler demo app's draws: a seed makes them repeatable (tests, a notebook whose output
    # is checked); None draws a fresh seed per server, as a model at temperature > 0 answers.
    seed: int | None = None

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                           if f.name != "api_key")
        return f"ServerConfig({fields}, api_key=<redacted>)"
