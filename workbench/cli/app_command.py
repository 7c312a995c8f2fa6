"""``zhbench`` with no command: the app, with ``--a``/``--b`` models already loading.

The one command-line module that reaches the screen layer, and only when it runs.
"""

from __future__ import annotations

import argparse


def add_app_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--a", metavar="M", help="open the app with model M (folder, .pth file or hub id) in pane A")
    parser.add_argument("--b", metavar="M", help="open the app with model M in pane B")
    parser.add_argument("--device", dest="app_device", metavar="DEVICE", help="where the app loads models (cpu, cuda)")


def cmd_app(args: argparse.Namespace) -> int:
    from workbench.app import ZhbenchApp

    ZhbenchApp(preload={"a": args.a, "b": args.b}, device=args.app_device).run()
    return 0
