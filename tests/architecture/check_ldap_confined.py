#!/usr/bin/env python3
"""LDAP stays in ca-server/src/store/ldap/.

  check_ldap_confined.py [SOURCE_ROOT]   checks ca-server/src and clone-tools/src under SOURCE_ROOT
                                         (default: this checkout)
  check_ldap_confined.py --self-test     checks that a tree breaking each rule is refused

Outside ca-server/src/store/ldap/, production code may not
  - include <ldap.h> or <lber.h>, name a libldap type (LDAP*, LDAPMessage, BerElement, berval, ...),
    call ldap_* / ber_* or use an LDAP_* / LBER_* constant;
  - hold, in a string literal, an LDAP filter ("(objectClass=...)"), a DN ("cn=...,ou=...",
    "o=pki-ca"), or an attribute or object class name: every NAME of schema/ca-schema.ldif, and the
    standard ones the CA uses (objectClass, userPassword, member, entryCSN, contextCSN, olc*).
Comments may speak of the directory; only code and string literals are read. The store's
interfaces (store/*.hpp) speak of records, the LDAP mapping is in store/ldap/.
Prints every breach with its file and line; exit 1 when there is one, 0 otherwise.
"""
import os
import re
import sys
import tempfile

CONFINED_TO = "ca-server/src/store/ldap/"
SOURCE_DIRS = ["ca-server/src", "clone-tools/src"]
SCHEMA = "schema/ca-schema.ldif"
# Standard names: refused as a whole literal or as "name=" / "name:" (the words are English too).
STANDARD_NAMES = ["objectClass", "userPassword", "member", "entryCSN", "contextCSN", "entryUUID", "uid"]

CODE_RULES = [
    (re.compile(r'#\s*include\s*<(ldap|lber|ldap_\w+|lber_\w+)\.h>'), "includes libldap"),
    (re.compile(r'\b(ldap|ber)_[a-z0-9_]+\s*\('), "calls libldap"),
    (re.compile(r'\b(LDAP|LBER)_[A-Z0-9_]+\b'), "uses a libldap constant"),
    (re.compile(r'\b(LDAPMessage|LDAPControl|LDAPMod|LDAPURLDesc|BerElement|BerValue|berval)\b|\bLDAP\s*\*'),
     "names a libldap type"),
]
FILTER = re.compile(r'\([!&|]?\(?[A-Za-z][A-Za-z0-9;.-]*[<>~]?=')
# Directory DNs are written in lower case here (X.509 subjects, "CN=localhost", are not DNs of the
# directory). A lone "o=<name>" is how the configuration names the suffix (core/config.hpp); an
# "o=" or "dc=" joined to another RDN or to a placeholder is a DN being built.
DN = re.compile(r'(^|,)\s*(cn|ou|uid|olcDatabase)=|(^|,)\s*(o|dc)=[^,]*(,|\{\})')
OLC = re.compile(r'^olc[A-Z]\w*$|\bolc[A-Z]\w*\s*[:=]')


def schema_names(root):
    names = set()
    path = os.path.join(root, SCHEMA)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for m in re.finditer(r"NAME\s+(?:'([^']+)'|\(([^)]*)\))", f.read()):
                names.update([m.group(1)] if m.group(1) else re.findall(r"'([^']+)'", m.group(2)))
    return names


def split_code(text):
    """(code with comments and literals blanked, [(line, literal text)]) of a C++ source."""
    code, literals = [], []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            chunk = text[i:end]
            code.append("\n" * chunk.count("\n"))
            line += chunk.count("\n")
            i = end
        elif c == 'R' and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            open_paren = text.find("(", i + 2)
            delim = text[i + 2:open_paren]
            close = text.find(")" + delim + '"', open_paren)
            close = n if close < 0 else close
            body = text[open_paren + 1:close]
            literals.append((line, body))
            code.append('""' + "\n" * body.count("\n"))
            line += body.count("\n")
            i = close + len(delim) + 2
        elif c == '"' or (c == "'" and not (i > 0 and text[i - 1].isalnum())):
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            if c == '"':
                literals.append((line, text[i + 1:j]))
            code.append('""')
            i = j + 1
        else:
            if c == "\n":
                line += 1
            code.append(c)
            i += 1
    return "".join(code), literals


def literal_problems(literal, names):
    if FILTER.search(literal):
        return "an LDAP filter"
    if DN.search(literal):
        return "a DN"
    if OLC.search(literal):
        return "a cn=config attribute"
    for word in re.findall(r"[A-Za-z][A-Za-z0-9-]*", literal):
        if word in names:
            return f"the attribute or class name {word}"
    stripped = literal.strip()
    for name in STANDARD_NAMES:
        if stripped == name or re.search(r'\b' + name + r'\s*[=:]', literal):
            return f"the attribute name {name}"
    return None


def check_file(full, rel, names):
    problems = []
    with open(full, encoding="utf-8") as f:
        text = f.read()
    # Include lines name files, not LDAP: keep them out of the literals.
    code, literals = split_code(text)
    for number, line in enumerate(code.split("\n"), 1):
        for pattern, what in CODE_RULES:
            if pattern.search(line):
                problems.append(f"{rel}:{number}: {what} outside {CONFINED_TO}")
    original = text.split("\n")
    for number, literal in literals:
        if number <= len(original) and re.match(r'\s*#\s*include', original[number - 1]):
            continue
        what = literal_problems(literal, names)
        if what:
            problems.append(f"{rel}:{number}: a string literal holds {what} outside {CONFINED_TO}: "
                            f"\"{literal[:60]}\"".replace("\n", " "))
    return problems


def check(root):
    names = schema_names(root)
    problems = []
    for source_dir in SOURCE_DIRS:
        top = os.path.join(root, source_dir)
        for directory, _, files in os.walk(top):
            for name in sorted(files):
                if not name.endswith((".hpp", ".cpp", ".h", ".cc")):
                    continue
                full = os.path.join(directory, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                if rel.startswith(CONFINED_TO):
                    continue
                problems.extend(check_file(full, rel, names))
    return problems


def self_test():
    schema = "attributetype ( 1.1 NAME 'caClaimNonce' )\nobjectclass ( 1.2 NAME 'caIdempotencyClaim' )\n"
    breaches = {
        "includes libldap": "#include <ldap.h>\n",
        "calls libldap": "void f(void* p) { ldap_msgfree(p); }\n",
        "uses a libldap constant": "int f() { return LDAP_SUCCESS; }\n",
        "names a libldap type": "void f(LDAPMessage* m);\n",
        "an LDAP filter": 'const char* f = "(&(objectClass=caIdempotencyClaim)(cn=x))";\n',
        "a DN": 'auto dn = fmt::format("cn={},ou=singleUseClaims,{}", id, suffix);\n',
        "the attribute or class name caClaimNonce": 'auto a = e.first_or("caClaimNonce");\n',
        "the attribute name member": 'mods.push_back({"member", {value}});\n',
        "a cn=config attribute": 'std::string a = "olcSyncrepl";\n',
    }
    allowed = ('// cn=config holds the agreements; caClaimNonce is compared; ldap_add() adds\n'
               '/* (objectClass=*) */\nconst char* usage = R"(usage: the contextCSN in cn=config)";\n'
               'std::string m = "is not a member";\n#include "store/ldap/ldap_pool.hpp"\n')
    failures = 0
    for expected, source in breaches.items():
        with tempfile.TemporaryDirectory() as root:
            write(root, SCHEMA, schema)
            write(root, "clone-tools/src/x.cpp", source)
            write(root, "ca-server/src/store/ldap/y.cpp", source)  # the one place it is allowed
            found = check(root)
            if not any(expected in p and p.startswith("clone-tools/src/x.cpp:") for p in found):
                print(f"self-test: a tree with {expected!r} was not refused: {found}")
                failures += 1
            if any("store/ldap/" in p.split(":")[0] for p in found):
                print(f"self-test: store/ldap/ was refused: {found}")
                failures += 1
    with tempfile.TemporaryDirectory() as root:
        write(root, SCHEMA, schema)
        write(root, "ca-server/src/authority/a.cpp", allowed)
        if check(root):
            print(f"self-test: a tree that keeps LDAP in store/ldap/ was refused: {check(root)}")
            failures += 1
    print("self-test: " + ("failed" if failures else "every rule refuses its breach"))
    return 1 if failures else 0


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    if not os.path.isdir(os.path.join(root, "ca-server", "src")):
        print(f"{root}: no ca-server/src", file=sys.stderr)
        return 2
    problems = check(root)
    for p in problems:
        print(p)
    print(f"{len(problems)} use(s) of LDAP outside {CONFINED_TO}" if problems
          else f"LDAP: confined to {CONFINED_TO}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
