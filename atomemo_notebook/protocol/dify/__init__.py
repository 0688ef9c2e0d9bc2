"""Dify's service API (advanced-chat apps): its events, calls, errors and adapter."""
