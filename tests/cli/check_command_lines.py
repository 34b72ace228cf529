#!/usr/bin/env python3
"""Runs ca-server and ca-clone with the command lines of command_lines.txt and compares what they
print (stdout, stderr, exit status) with expected_output.txt, byte for byte: usage texts, error
messages and exit codes are an interface scripts rely on.

  check_command_lines.py BIN_DIR            compare; prints a diff and exits 1 on any difference
  check_command_lines.py BIN_DIR --write    (re)write expected_output.txt from these binaries

Each command runs in an empty temporary folder. Log timestamps become <time>, the folder <cwd>.
"""
import difflib
import os
import re
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
COMMAND_LINES = os.path.join(HERE, "command_lines.txt")
EXPECTED = os.path.join(HERE, "expected_output.txt")
TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def command_lines():
    with open(COMMAND_LINES, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.strip() and not line.lstrip().startswith("#"):
                yield line


def stream_text(name, data):
    """The bytes of one stream, every line behind '| ', a missing last newline said so."""
    out = [f"{name}:\n"]
    text = data.decode("utf-8", errors="backslashreplace")
    lines = text.split("\n")
    for line in lines[:-1]:
        out.append(f"| {line}\n")
    if lines[-1]:
        out.append(f"| {lines[-1]}\n\\ no newline at the end\n")
    return "".join(out)


def run(bin_dir, line):
    argv = shlex.split(line)
    argv[0] = os.path.join(bin_dir, argv[0])
    with tempfile.TemporaryDirectory(prefix="cli-") as cwd:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C"}
        done = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)

        def clean(data):
            data = TIMESTAMP.sub(b"<time>", data)
            for path, name in ((os.path.realpath(cwd), b"<cwd>"), (cwd, b"<cwd>"), (bin_dir, b"<bin>")):
                data = data.replace(os.fsencode(path), name)
            return data

        return (f"$ {line}\nexit {done.returncode}\n" + stream_text("stdout", clean(done.stdout)) +
                stream_text("stderr", clean(done.stderr)) + "\n")


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--write"):
        sys.exit(__doc__)
    bin_dir = os.path.abspath(sys.argv[1])
    actual = "".join(run(bin_dir, line) for line in command_lines())
    if len(sys.argv) == 3:
        with open(EXPECTED, "w", encoding="utf-8") as f:
            f.write(actual)
        return 0
    with open(EXPECTED, encoding="utf-8") as f:
        expected = f.read()
    if actual == expected:
        print(f"{sum(1 for _ in command_lines())} command lines: output as expected")
        return 0
    sys.stdout.writelines(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                               "expected_output.txt", "actual"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
