#!/usr/bin/env python3
"""The layers of ca-server, as the includes show them, and no include circle.

  check_layers.py [SOURCE_ROOT]     checks ca-server/src under SOURCE_ROOT (default: this checkout)
  check_layers.py --self-test       checks that a tree breaking each rule is refused

Rules (each include "a/b.hpp" read from ca-server/src):
  - the layers point one way: core <- crypto <- store <- store/ldap <- authority <- api <- http <- app
    (a file may include its own layer and those to its left; app is the composition root);
  - store/ holds the store's interfaces and records; their LDAP implementation, store/ldap/, is a
    layer of its own that the interfaces never include;
  - http/ never touches the directory: it may not include store/ldap/;
  - api/ (the messages ca-server and ca-clone exchange) stands on core alone: the wire knows no
    directory, no key, no authority type (http maps them);
  - inside authority/, the folders point one way too:
    audit <- access <- cluster <- revocation <- key_recovery <- issuance <- instance;
  - no circle of includes between units (x.hpp and x.cpp are one unit).
Prints every breach with its file and line; exit 1 when there is one, 0 otherwise.
"""
import os
import re
import sys
import tempfile

LAYERS = ["core", "crypto", "store", "store/ldap", "authority", "api", "http", "app"]
# Layers that may include only the ones named (besides themselves), not all those to their left.
NARROW = {"api": ["core"], "http": ["core", "crypto", "store", "authority", "api"]}
AUTHORITY = ["audit", "access", "cluster", "revocation", "key_recovery", "issuance", "instance"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def rank(path):
    """(layer index, authority folder index or -1) of a path relative to ca-server/src."""
    parts = path.split("/")
    if parts[0] not in LAYERS:
        return None
    layer = LAYERS.index(parts[0])
    if parts[0] == "store" and len(parts) > 2 and parts[1] == "ldap":
        layer = LAYERS.index("store/ldap")
    folder = -1
    if parts[0] == "authority" and len(parts) > 2 and parts[1] in AUTHORITY:
        folder = AUTHORITY.index(parts[1])
    return layer, folder


def unit(path):
    return os.path.splitext(path)[0]


def check(src):
    problems = []
    graph = {}
    for directory, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith((".hpp", ".cpp")):
                continue
            full = os.path.join(directory, name)
            rel = os.path.relpath(full, src).replace(os.sep, "/")
            here = rank(rel)
            if here is None:
                continue  # main.cpp: the top, it may use everything
            if rel.startswith("authority/") and rel.count("/") == 1:
                problems.append(f"{rel}: authority/ holds its files in folders ({', '.join(AUTHORITY)})")
            with open(full, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = m.group(1)
                    there = rank(target)
                    if there is None:
                        continue
                    graph.setdefault(unit(rel), set()).add((unit(target), rel, number))
                    if there[0] > here[0]:
                        problems.append(f"{rel}:{number}: {LAYERS[here[0]]}/ includes {target}, a layer above it")
                    elif there[0] < here[0] and LAYERS[there[0]] not in NARROW.get(LAYERS[here[0]], LAYERS):
                        problems.append(f"{rel}:{number}: {LAYERS[here[0]]}/ includes {target}; it may use only "
                                        f"{', '.join(NARROW[LAYERS[here[0]]])}")
                    elif there[0] == here[0] and here[1] >= 0 and there[1] > here[1]:
                        problems.append(f"{rel}:{number}: authority/{AUTHORITY[here[1]]}/ includes {target}, "
                                        f"a folder above it")
    # Circles between units (depth-first search, each circle reported once by its members).
    state, stack, seen = {}, [], set()

    def visit(node):
        state[node] = 1
        stack.append(node)
        for target, rel, number in sorted(graph.get(node, ())):
            if target == node:
                continue
            if state.get(target) == 1:
                circle = stack[stack.index(target):]
                key = frozenset(circle)
                if key not in seen:
                    seen.add(key)
                    problems.append(f"{rel}:{number}: include circle: " + " -> ".join(circle + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return problems


def self_test():
    cases = {
        "a layer above": {"store/a.cpp": '#include "authority/issuance/x.hpp"\n',
                          "authority/issuance/x.hpp": ""},
        "a folder above": {"authority/audit/a.cpp": '#include "authority/issuance/x.hpp"\n',
                           "authority/issuance/x.hpp": ""},
        "include circle": {"core/a.hpp": '#include "core/b.hpp"\n', "core/b.cpp": '#include "core/a.hpp"\n',
                           "core/b.hpp": ""},
        "holds its files in folders": {"authority/loose.cpp": ""},
        "it may use only core": {"api/a.hpp": '#include "store/records.hpp"\n', "store/records.hpp": ""},
        "a layer above it": {"api/b.hpp": '#include "http/router.hpp"\n', "http/router.hpp": ""},
        "store/ includes store/ldap/x.hpp, a layer above it": {"store/a.hpp": '#include "store/ldap/x.hpp"\n',
                                                               "store/ldap/x.hpp": ""},
        "http/ includes store/ldap/x.hpp; it may use only": {"http/a.cpp": '#include "store/ldap/x.hpp"\n',
                                                            "store/ldap/x.hpp": ""},
    }
    failures = 0
    for expected, files in cases.items():
        with tempfile.TemporaryDirectory() as root:
            for rel, text in files.items():
                path = os.path.join(root, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
            found = check(root)
            if not any(expected in p for p in found):
                print(f"self-test: a tree with {expected!r} was not refused: {found}")
                failures += 1
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "authority", "instance"))
        with open(os.path.join(root, "authority", "instance", "a.cpp"), "w", encoding="utf-8") as f:
            f.write('#include "authority/audit/x.hpp"\n#include "store/y.hpp"\n#include "core/z.hpp"\n')
        for rel, text in {"api/m.hpp": '#include "core/z.hpp"\n',
                          "http/h.cpp": '#include "api/m.hpp"\n#include "authority/instance/a.hpp"\n',
                          "store/ldap/l.cpp": '#include "store/r.hpp"\n#include "core/z.hpp"\n',
                          "app/c.cpp": '#include "store/ldap/l.hpp"\n'}.items():
            os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
                f.write(text)
        if check(root):
            print(f"self-test: a tree that keeps the rules was refused: {check(root)}")
            failures += 1
    print("self-test: " + ("failed" if failures else "every rule refuses its breach"))
    return 1 if failures else 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    src = os.path.join(root, "ca-server", "src")
    if not os.path.isdir(src):
        print(f"{src}: no such folder", file=sys.stderr)
        return 2
    problems = check(src)
    for p in problems:
        print(p)
    print(f"{len(problems)} breach(es) of the layers" if problems else "layers: every include points down, no circle")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
