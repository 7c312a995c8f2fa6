"""Batch runs, headless: a prompt set through several models, every answer on disk as it finishes.

``prompts`` (reading JSONL, CSV and text sets, and the built-in ones in ``builtin/``), ``store`` (a run
folder: its settings and its answers, durably), ``runner`` (one model at a time, failures recorded, resumable)
and ``report`` (Markdown, HTML and JSON). ``zhbench batch`` is the command (``workbench/cli/batch.py``).
"""
