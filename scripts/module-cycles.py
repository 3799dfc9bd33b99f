#!/usr/bin/env python3
"""Fails when a module of a crate imports a module that imports it back, directly or through others.

Usage: scripts/module-cycles.py CRATE_SRC_DIR...   (e.g. domain/src server/src)

A module is one file. `use crate::a::b::C` (also inside `use crate::{...}` trees, and
`crate::a::b` paths in code) is an arrow to the deepest file module named by the path: a/b.rs or
a/b/mod.rs, else a.rs. `use super::x` resolves the same way. A mod.rs (or lib.rs) that only
declares and re-exports its children is not an arrow source for its children's imports, so
`pub use` re-exports in a parent do not create cycles with the children's own imports of
siblings. Unit-test modules are left out. Prints every module's arrows with --graph.
"""
import os
import re
import sys


def modules(root):
    mods = {}
    for dp, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dp, f)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            mods[tuple(parts)] = path
    return mods


def expand(tree):
    """'a::{b, c::{d}}' -> ['a::b', 'a::c::d']"""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [tree] if tree else []
    prefix, inner = tree[:i], tree[i + 1 : tree.rindex("}")]
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    out = []
    for it in items:
        for e in expand(it):
            out.append(prefix + e)
    return out


def resolve(mods, path):
    for n in range(len(path), 0, -1):
        if tuple(path[:n]) in mods:
            return tuple(path[:n])
    return None


def graph(root):
    mods = modules(root)
    g = {}
    for mod, file in mods.items():
        src = re.sub(r"//[^\n]*", "", open(file).read())
        # Unit tests (`#[cfg(test)] mod tests`, last in a file by habit) are not the module.
        src = re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", src)[0]
        targets = set()
        for m in re.finditer(r"\buse\s+(crate|super)::(.*?);", src, re.S):
            base = [] if m.group(1) == "crate" else list(mod[:-1])
            for p in expand(m.group(2)):
                p = re.sub(r"\s+as\s+\w+$", "", p.strip())
                segs = [s for s in p.split("::") if s and s != "self"]
                t = resolve(mods, base + segs)
                if t is not None:
                    targets.add(t)
        for m in re.finditer(r"(?<!use )\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", src):
            t = resolve(mods, m.group(1).split("::"))
            if t is not None:
                targets.add(t)
        # A parent's declarations and re-exports of its own children are not dependencies.
        g[mod] = sorted(t for t in targets if t != mod and t[: len(mod)] != mod)
    return g


def cycles(g):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, []):
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
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(g):
        if v not in index:
            visit(v)
    return out


def name(m):
    return "::".join(m) or "(crate root)"


def main():
    args = [a for a in sys.argv[1:] if a != "--graph"]
    failed = False
    for root in args:
        g = graph(root)
        if "--graph" in sys.argv:
            for m in sorted(g):
                print(f"{root}: {name(m)} -> {', '.join(name(t) for t in g[m])}")
        for comp in cycles(g):
            failed = True
            print(f"{root}: import cycle among: {', '.join(sorted(name(m) for m in comp))}")
    if failed:
        sys.exit(1)
    print(f"no import cycles in {', '.join(args)}")


if __name__ == "__main__":
    main()
