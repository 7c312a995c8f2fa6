"""``zhbench serve``'s headless core: local engines behind an OpenAI-compatible chat-completions API.

- ``requests``: a request's JSON read into a history, decoding settings and stop strings (400 otherwise);
- ``replies``: one reply generated in a worker thread, its pieces handed to the event loop, and the
  OpenAI JSON shapes of what goes back;
- ``app``: the served models, one request at a time per engine with a bounded queue, and the Starlette app.

Imported only by the ``serve`` command: Starlette and anyio load with it, never with the rest of the CLI.
"""
