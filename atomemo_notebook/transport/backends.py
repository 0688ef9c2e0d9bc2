"""Where the backends were: each system's is now written once, with no I/O, in
protocol/<system>/backend.py, and run by the model's drivers (model/backend.py). `AppInfo`
is still importable from here."""

from __future__ import annotations

from ..protocol.backend import AppInfo

__all__ = ["AppInfo"]
