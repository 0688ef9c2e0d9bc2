"""Pipelit: REST to start an execution, one WebSocket to watch it."""
