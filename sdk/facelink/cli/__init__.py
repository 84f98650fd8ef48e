"""``facelink`` command line: ``main(argv) -> exit code``, tested in-process.

Exit codes: 0 success, 1 runtime failure, 2 usage error, 3 integrity/verification
failure of a stream.  Errors are one line on stderr; set FACELINK_DEBUG=1 for tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from .._version import __version__
from ..errors import FaceLinkError

__all__ = ["main", "entry_point"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: one line, exit code 2
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    from . import _animate, _bench, _calibrate, _decode, _demo, _encode, _keys, _models, _receive, _send, _verify

    p = _Parser(prog="facelink", description="Low-bandwidth talking-head video: keypoints instead of pixels.")
    p.add_argument("--version", action="version", version=f"facelink {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for mod in (_demo, _encode, _decode, _animate, _send, _receive, _keys, _verify, _models, _bench, _calibrate):
        mod.register(sub)
    return p


def _fail(argv: list[str], line: str, code: int) -> int:
    """One line on stderr; with ``--json`` also ``{"error": ..., "code": N}`` on stdout (for scripts)."""
    print(line, file=sys.stderr)
    if "--json" in argv:
        import json

        print(json.dumps({"error": line, "code": code}))
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except _UsageError as e:
        return _fail(argv, f"{e}", 2)
    except SystemExit as e:  # --help / --version
        return int(e.code or 0) if isinstance(e.code, int) else 0
    except FaceLinkError as e:
        return _fail(argv, f"facelink: error: {e}", e.exit_code)
    except KeyboardInterrupt:
        return _fail(argv, "facelink: interrupted", 130)
    except BrokenPipeError:
        return 1
    except Exception as e:  # noqa: BLE001 - last line of defence: one line, never a traceback
        if os.environ.get("FACELINK_DEBUG"):
            traceback.print_exc()
        return _fail(argv, f"facelink: internal error: {type(e).__name__}: {e} (set FACELINK_DEBUG=1 for a traceback)", 1)


def entry_point() -> None:
    sys.exit(main())
