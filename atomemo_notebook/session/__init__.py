"""Sessions: connect() names a system and returns a chat with it, and the background runtime
(one event loop, the embedded demo server) that widgets and evaluation share. Beside the model,
below the views: evaluation uses it without reaching into a view."""
