"""zhbench's engines: loading Chinese chat models and streaming their replies. Imports no Textual.

``engines.api`` is what a caller needs (the ``ChatEngine`` protocol, ``ReplyStream``); ``engines.registry``
finds the families and loads a model; ``engines.hub`` finds models on this machine. Heavy libraries
(torch, transformers, rwkv) are imported only when a model is loaded or built.
"""
