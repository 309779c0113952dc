"""The `espi` command never shows a traceback: every command on every hostile file answers
with clean lines on stderr and its documented exit code (2 unreadable, 1 invalid)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from espi.cli import main

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"


def reading(value="1", start="1700000000", duration="3600", power="0"):
    return (
        f'<feed xmlns="{ATOM}"><entry><content><ReadingType xmlns="{ESPI}"><uom>72</uom>'
        f"<powerOfTenMultiplier>{power}</powerOfTenMultiplier></ReadingType></content></entry>"
        f'<entry><content><IntervalBlock xmlns="{ESPI}"><IntervalReading><timePeriod>'
        f"<duration>{duration}</duration><start>{start}</start></timePeriod>"
        f"<value>{value}</value></IntervalReading></IntervalBlock></content></entry></feed>"
    ).encode()


#: name -> (content, None for a directory, or "missing"), and whether it can be read at all
HOSTILE = {
    "overflow number": (reading(value="1e400"), True),
    "NaN": (reading(value="NaN"), True),
    "inf": (reading(value="-inf"), True),
    "20-digit integer": (reading(value="12345678901234567890"), True),
    "year 0": (reading(start="-62167219200"), True),
    "year 10000": (reading(start="253402300800"), True),
    "power of ten 400": (reading(power="400"), True),
    "invalid UTF-8": (reading()[:120] + b"\xff\xfe\xc3\x28" + reading()[120:], False),
    "truncated": (reading()[:-40], False),
    "DTD": (b'<!DOCTYPE feed [<!ENTITY x "y">]>' + reading(), False),
    "not XML": (b"hello, world\n", False),
    "JSON": (b'{"readings": [1, 2, 3]}', False),
    "empty": (b"", False),
    "directory": (None, False),
    "missing": ("missing", False),
}
COMMANDS = {
    "validate": ["validate"],
    "lint": ["lint"],
    "summary": ["summary"],
    "export csv": ["export", "--format", "csv"],
    "export json": ["export", "--format", "json"],
    "convert": ["convert", "-o", "{out}"],
}
#: exit codes of a file that can be read: validate (the schema refuses), lint (the reader's
#: tolerance is a warning), the others (fine)
READABLE = {"validate": 1, "lint": 1}


def hostile_file(tmp_path, name):
    content, _ = HOSTILE[name]
    path = tmp_path / ("in.json" if name == "JSON" else "in.xml")
    if content is None:
        path.mkdir()
    elif content != "missing":
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", HOSTILE)
def test_every_command_on_every_hostile_file(tmp_path, command, name):
    path = hostile_file(tmp_path, name)
    out = tmp_path / "out.xml"
    args = [a.format(out=out) for a in COMMANDS[command]]
    done = CliRunner().invoke(main, [*args, str(path)])
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    err = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert all(line.startswith(("error: ", "tolerated: ", "warning: ")) or "readings" in line
               for line in err), done.stderr  # fmt: skip
    readable = HOSTILE[name][1]
    if readable:
        assert done.exit_code == READABLE.get(command, 0), done.stderr
        assert not any(line.startswith("error: ") for line in err), done.stderr
    else:
        assert done.exit_code == 2, done.stderr
        errors = [line for line in err if line.startswith("error: ")]
        assert len(errors) == 1, done.stderr
        assert str(path) in errors[0]
        assert done.stdout == ""  # nothing before the error, nothing after
        assert not out.exists() and not (tmp_path / "out.xml.partial").exists()
    if command.startswith("export") and readable:
        assert done.stdout.count("\n") >= 1
