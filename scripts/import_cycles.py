#!/usr/bin/env python3
"""Import circles between the modules of a crate.

Reads every `use crate::…` (braces and multi-line groups included) and every
inline `crate::a::b` path in `<crate>/src`, maps each to the deepest module
it names, and reports the strongly connected components of the module graph
at the given depth (1: top-level modules such as `scaling` or `backup`).
A module's own descendants do not count as a circle. Exit 1 when any circle
exists, listing one edge of evidence per import.

    scripts/import_cycles.py crates/service [--depth N]
"""
import os
import re
import sys


def modules(src):
    """File path → module path (tuple)."""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            out[os.path.join(root, f)] = tuple(rel)
    return out


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def expand(prefix, body):
    """`a::{b, c::{d, e}}` → [a::b, a::c::d, a::c::e]."""
    items, depth, cur = [], 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    out = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        m = re.match(r"^([\w:]*?)::\{(.*)\}$", item, flags=re.S)
        if m:
            out += expand(prefix + [p for p in m.group(1).split("::") if p], m.group(2))
        elif item.startswith("{") and item.endswith("}"):
            out += expand(prefix, item[1:-1])
        else:
            out.append(prefix + [p.split(" as ")[0].strip() for p in item.split("::")])
    return out


def imports(text, module):
    """Absolute paths a file imports; `super::` and `self::` resolve against `module`. Inline
    test modules (from the first `#[cfg(test)]` on) are left out: their `super` is the file."""
    text = strip_comments(text).split("#[cfg(test)]")[0]
    paths = []
    anchors = {"crate": [], "super": list(module[:-1]), "self": list(module)}
    for anchor, base in anchors.items():
        for m in re.finditer(rf"\buse\s+{anchor}::(.*?);", text, flags=re.S):
            paths += [base + p for p in expand([], m.group(1))]
        for m in re.finditer(rf"(?<![\w:]){anchor}::((?:\w+::)*\w+)", text):
            paths.append(base + m.group(1).split("::"))
    return [p for p in paths if p and p[-1] != "*"]


def main():
    args = sys.argv[1:]
    depth = 1
    if "--depth" in args:
        i = args.index("--depth")
        depth = int(args[i + 1])
        del args[i : i + 2]
    crate = args[0] if args else "crates/service"
    src = os.path.join(crate, "src")
    mods = modules(src)
    known = set(mods.values())
    # Items the crate root re-exports (`pub use cluster::ClusterService;`) belong to their module.
    root = os.path.join(src, "lib.rs")
    reexports = {}
    if os.path.exists(root):
        for m in re.finditer(r"\bpub use\s+(?!crate::)([\w:{}, \n]+?);", strip_comments(open(root).read())):
            for path in expand([], m.group(1)):
                reexports[path[-1]] = path
    graph, why = {}, {}
    for path, mod in mods.items():
        here = mod[:depth]
        if not here:
            continue
        for p in imports(open(path).read(), mod):
            if p and p[0] in reexports and (p[0],) not in known:
                p = reexports[p[0]] + p[1:]
            target = ()
            for i in range(len(p), 0, -1):
                if tuple(p[:i]) in known:
                    target = tuple(p[:i])
                    break
            there = target[:depth]
            if not there or there == here or there[: len(here)] == here or here[: len(there)] == there:
                continue
            graph.setdefault(here, set()).add(there)
            why.setdefault((here, there), f"{os.path.relpath(path)} uses {'::'.join(p)}")
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    if not sccs:
        print(f"{crate}: no import circle between modules at depth {depth}")
        return 0
    for comp in sccs:
        names = sorted("::".join(c) for c in comp)
        print(f"{crate}: import circle between {', '.join(names)}")
        members = set(comp)
        for a in comp:
            for b in sorted(graph.get(a, ())):
                if b in members:
                    print(f"    {'::'.join(a)} -> {'::'.join(b)}: {why[(a, b)]}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
