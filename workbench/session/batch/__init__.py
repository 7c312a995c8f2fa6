"""Batch runs, headless: a prompt set through several models, every answer on disk as it finishes.

``prompts`` (reading JSONL, CSV and text sets, and the built-in ones in ``builtin/``), ``store`` (a run
folder: its settings and its answers, durably), ``runner`` (one model at a time, failures recorded, resumable),
``judge`` (a model judging each answer against the baseline's in both orders, resumable) with
``judge_results`` (win rates with bootstrap intervals, consistency, judge votes), and ``report`` (Markdown,
HTML and JSON). ``zhbench batch`` is the command (``workbench/cli/batch.py``).
"""
