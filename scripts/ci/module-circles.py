"""Fails when the library's top-level modules import each other in a circle.

ARCHITECTURE.md's flow runs one way (Scenario -> sentinel -> ready -> kill -> observe ->
Outcome -> Report); a circle between two top-level modules means a concept sits on the
wrong side of the flow. A top-level module is `src/NAME.rs` together with its folder
`src/NAME/`; its imports are every `crate::NAME` (and `super::NAME` that climbs to the
crate root) in code, tests included, comments and doc links excluded. A name re-exported
at the root (`crate::Report`) counts as the module it comes from.

Usage: python3 scripts/ci/module-circles.py [SRC_DIR]   (default: src)
"""

import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "src"
lib = open(os.path.join(src, "lib.rs")).read()


def code_of(text):
    """The text without comments and string literals (doc links are not imports)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif re.match(r'r#*"', text[i:i + 8]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            out.append("\n" * text.count("\n", i, end))
            i = n if end < 0 else end + 1 + len(hashes)
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append("\n" * text.count("\n", i, j))
            i = j + 1
        elif text[i] == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            i += len(re.match(r"'(\\.|[^\\'])'", text[i:]).group(0))
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


lib_code = code_of(lib)
modules = re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", lib_code, re.M)


def first_segments(group):
    """`{a, b::c, d as e, f::{g, h}}` -> the first segment of each path: a, b, d, f."""
    depth, item, items = 0, "", []
    for ch in group.strip()[1:-1]:
        if ch == "," and depth == 0:
            items.append(item)
            item = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        item += ch
    items.append(item)
    return [re.match(r"\s*(\w+)", it).group(1) for it in items if it.strip()]


def names_of(tail):
    """The names a `pub use` brings in: `x::{A, b as C, d::E}` -> A, C, E."""
    tail = tail.strip().rstrip(";")
    m = re.match(r"(?:\w+::)*\{(.*)\}$", tail, re.S)
    parts = [p.strip() for p in m.group(1).split(",")] if m else [tail]
    names = []
    for p in parts:
        if not p:
            continue
        if "{" in p or "}" in p:
            p = p.replace("{", "").replace("}", "")
        p = p.split(" as ")[-1] if " as " in p else p.split("::")[-1]
        names.append(p.strip())
    return names


# What the root re-exports, by name: `crate::Report` is `report`'s.
reexport = {}
for m in re.finditer(r"^\s*pub use\s+(\w+)::(.*?);", lib_code, re.M | re.S):
    for name in names_of(m.group(2)):
        reexport[name] = m.group(1)


def files_of(mod):
    found = []
    if os.path.exists(os.path.join(src, mod + ".rs")):
        found.append(os.path.join(src, mod + ".rs"))
    folder = os.path.join(src, mod)
    for root, _, files in os.walk(folder):
        found += [os.path.join(root, f) for f in sorted(files) if f.endswith(".rs")]
    return found


def depth_below_root(path):
    """How many `super::` climb from this file to the crate root."""
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    return len(rel)


edges = {}  # (from, to) -> first place seen
unknown = []
for mod in modules:
    for path in files_of(mod):
        code = code_of(open(path).read())
        for m in re.finditer(r"\b(?:crate|((?:super::)+))::(\{|\w+)", code):
            supers = m.group(1)
            if supers is not None and supers.count("super::") != depth_below_root(path):
                continue  # stays inside the module (or climbs to another file of it)
            if m.group(2) == "{":
                start, depth, j = m.end() - 1, 0, m.end() - 1
                while j < len(code):
                    depth += code[j] == "{"
                    depth -= code[j] == "}"
                    if depth == 0:
                        break
                    j += 1
                heads = first_segments(code[start:j + 1])
            else:
                heads = [m.group(2)]
            line = code.count("\n", 0, m.start()) + 1
            for head in heads:
                target = head if head in modules else reexport.get(head)
                if target is None:
                    if not re.search(rf"\b(?:const|static|fn|struct|enum|type|macro_rules!)\s+{head}\b", lib_code):
                        unknown.append(f"{path}:{line}: crate::{head}")
                    continue
                if target != mod:
                    edges.setdefault((mod, target), f"{path}:{line}")

graph = {m: sorted({b for (a, b) in edges if a == m}) for m in modules}

# Tarjan's strongly connected components: every component of two or more modules is a
# circle (or several); show one circle through each, with where each import is.
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]


def strong(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
        if w not in index:
            strong(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            comps.append(sorted(comp))


sys.setrecursionlimit(10000)
for v in modules:
    if v not in index:
        strong(v)


def circle_in(comp):
    """A shortest circle through the component's first module, staying in the component."""
    members, start = set(comp), comp[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in graph[v]:
            if w == start:
                return paths[v] + [start]
            if w in members and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return comp


for u in unknown:
    print(f"module-circles: cannot tell which module this is: {u}", file=sys.stderr)
for comp in comps:
    circle = circle_in(comp)
    print(f"import circle among top-level modules: {' -> '.join(circle)}", file=sys.stderr)
    for a, b in zip(circle, circle[1:]):
        print(f"  {a} -> {b}: {edges[(a, b)]}", file=sys.stderr)
    if len(comp) > len(circle) - 1:
        print(f"  (the whole knot: {', '.join(comp)})", file=sys.stderr)
if comps or unknown:
    sys.exit(1)
print(f"no import circle among {len(modules)} top-level modules ({len(edges)} imports)")
