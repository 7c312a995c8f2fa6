"""zhbench's themes (Textual ``Theme`` objects and their ``.tcss``)."""
