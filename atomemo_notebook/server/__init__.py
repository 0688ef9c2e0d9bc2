"""The embedded Atomemo-compatible server: the offline default for demos and the real
counterpart of every test (Starlette + uvicorn, installed with the package)."""

from ._app import create_app
from ._config import ServerConfig
from ._demo import DEMO_APPS, DemoApp
from ._local import LocalServer

__all__ = ["DEMO_APPS", "DemoApp", "LocalServer", "ServerConfig", "create_app"]
