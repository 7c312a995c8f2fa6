"""The blind arena's headless half: votes stored durably, identity leaks, and the leaderboard.

``votes`` (battle records and their SQLite store), ``leaks`` (does a reply name its maker), ``style``
(what style control compares), ``fastchat`` (FastChat's battle files both ways), ``leaderboard`` (the
typed result a screen or the CLI shows) and ``bradley_terry`` (the statistics, numpy and scipy).
"""
