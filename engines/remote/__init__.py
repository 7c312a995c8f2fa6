"""Engines for models behind a server (an OpenAI-compatible API): text in, text out, no weights here.

A server is a ``ChatEngine`` like any local model; its module lands here with the remote-engine issue.
"""
