"""Engines for models behind a server (an OpenAI-compatible API): text in, text out, no weights here.

``server`` says where a server is, how requests are authorised and what each failure means;
``openai_compat`` is the ``ChatEngine`` that streams a model's replies from it. Neither imports its HTTP
client until a request is made, so the command line and the app start as fast as before.
"""
