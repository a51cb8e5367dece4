"""The FastAPI version a project pins (requirements*.txt, pyproject.toml, setup.cfg), and
which teardown order that version has: the LOOP205 message depends on it.

Kept apart from the analysis so the command line can read a pin without importing it.
"""
from __future__ import annotations

import os
import re

from loopsafe import replay

_REQ_LINE = re.compile(r"^\s*fastapi(?:\[[^\]]*\])?\s*(?P<spec>[^;#]*)", re.IGNORECASE)


def version_tuple(text: str) -> tuple[int, ...] | None:
    m = re.match(r"^\s*v?(\d+(?:\.\d+)*)", text or "")
    if not m:
        return None
    return tuple(int(p) for p in m.group(1).split("."))


def pinned_version(spec: str) -> str:
    """The one FastAPI version range a requirement specifier allows, as a version, or "".

    Exact pins (`==0.115.4`, `===0.115.4`), compatible releases on a patch level
    (`~=0.115.2`), Poetry carets and tildes on 0.x (`^0.110.0`, `~0.110`: one minor release)
    pin the behaviour this analysis cares about; open ranges do not.
    """
    spec = spec.strip().strip("\"'").strip()
    if "," in spec:
        return ""
    m = re.match(r"^(===?|~=|\^|~)?\s*v?(\d+(?:\.\d+)*)(?:\.\*)?\s*$", spec)
    if not m:
        return ""
    op, ver = m.group(1) or "", m.group(2)
    parts = ver.split(".")
    if op in ("==", "===", ""):
        return ver if op or spec[:1].isdigit() else ""
    if op == "~=":
        return ver if len(parts) >= 3 else ""
    if op in ("^", "~"):
        return ver if parts[0] == "0" and len(parts) >= 2 else ""
    return ""


def read_fastapi_pin(directory: str) -> str:
    """The FastAPI version pinned by the project in `directory` (or ""): requirements*.txt,
    pyproject.toml (PEP 621 `dependencies`, Poetry), setup.cfg `install_requires`."""
    found: list[str] = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return ""
    replay.note_dir(directory, names)
    for name in names:
        path = os.path.join(directory, name)
        if name.startswith("requirements") and name.endswith((".txt", ".in")):
            found += _from_requirement_lines(_read(path).splitlines())
    text = _read(os.path.join(directory, "pyproject.toml"))
    if text:
        found += _from_pyproject(text)
    text = _read(os.path.join(directory, "setup.cfg"))
    if text:
        import configparser

        parser = configparser.ConfigParser()
        try:
            parser.read_string(text)
            found += _from_requirement_lines(parser.get("options", "install_requires", fallback="").splitlines())
        except configparser.Error:
            pass
    versions = {v for v in found if v}
    return versions.pop() if len(versions) == 1 else ""


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    replay.note_file(path, data)
    try:
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        return ""


def _from_requirement_lines(lines) -> list[str]:
    out = []
    for line in lines:
        m = _REQ_LINE.match(line.strip().strip(",").strip("\"'"))
        if m and not re.match(r"^fastapi[-_.]?\w", line.strip(), re.IGNORECASE):
            out.append(pinned_version(m.group("spec")))
    return out


def _from_pyproject(text: str) -> list[str]:
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            return []
    try:
        data = tomllib.loads(text)
    except Exception:  # noqa: BLE001 - a broken pyproject pins nothing
        return []
    out = _from_requirement_lines(data.get("project", {}).get("dependencies", []) or [])
    poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {}) or {}
    for name, spec in poetry.items():
        if name.lower() == "fastapi":
            if isinstance(spec, dict):
                spec = spec.get("version", "")
            out.append(pinned_version(str(spec)))
    return out


def fastapi_case(version: str) -> str:
    """Which teardown order a FastAPI version has (see fastapi-execution-model.md §2):
    "late" (<0.106: teardown after background tasks), "early" (0.106-0.117: before the
    response), "request" (0.118+: after background tasks, session held), or ""."""
    v = version_tuple(version)
    if v is None:
        return ""
    v = (v + (0, 0, 0))[:3]
    if v < (0, 106, 0):
        return "late"
    if v < (0, 118, 0):
        return "early"
    return "request"
