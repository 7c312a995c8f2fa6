"""zhbench: a terminal workbench for running Chinese chat models locally and comparing them side by side.

Everything zhbench installs lives under this one package: ``zhbench.engines`` (models, no screen),
``zhbench.workbench`` (the headless session, the CLI and the Textual app), ``zhbench.widgets`` and
``zhbench.themes``. In the repository those are the top-level folders of the same names; the links in this
folder make them its sub-packages, and a wheel holds them as real folders under ``zhbench/``.
"""
