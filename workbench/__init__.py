"""The product around the engines: the headless session (``session``), the command line (``cli``), and the
Textual app (``app``, ``screens``, ``workers``, ``commands``) that wires widgets to the session."""
