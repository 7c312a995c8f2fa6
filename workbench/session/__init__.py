"""The headless part of zhbench: what a screen, a batch run and the CLI all need. Imports no Textual.

Panes and turns (``bench``), typed transcript records and their store, the config, memory readings and
the models on offer. Tested without a screen.
"""
