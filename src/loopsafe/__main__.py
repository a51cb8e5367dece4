"""`python -m loopsafe` runs the command line.

`python -m` puts the current directory first on `sys.path`. loopsafe is usually run from
the project it checks, so a project module named like something loopsafe imports later
(`hashlib`, `libcst`, `click`...) would be imported, and executed, in its place. loopsafe
never runs analysed code, so that entry is removed before anything else is imported.
"""
import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from loopsafe.launch import run  # noqa: E402 - must come after the sys.path repair

if __name__ == "__main__":
    run()
