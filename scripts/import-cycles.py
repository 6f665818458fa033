#!/usr/bin/env python3
"""Counts import cycles between the files of each crate, and exits 1 when there is any.

A file is a module (`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`). A file A depends on a
file B when A names one of B's items by any path form Rust has: `crate::a::b::Item`,
`super::Item` / `super::super::…` (from a submodule, its parent), `self::x::Item`, a bare
`x::Item` where `x` is a child module A declares, and each of those inside
`use …::{a, b::c}` groups. A path resolves to the deepest module it names. Declaring a child
(`mod x;`) is not a dependency, nor is a `pub use` re-export (a facade); using it is.
Test modules (`#[cfg(test)] mod tests`) are left out. Prints every cycle (a strongly connected
component of two files or more) with its edges.

    python3 scripts/import-cycles.py crates/*/src
"""
import os
import re
import sys


def modules(src):
    """{module path: text} for every .rs file under src ('' is the crate root). With both a
    `lib.rs` and a `main.rs`, the binary is another crate that uses the library (one way):
    its `main.rs` is left out. So is `src/bin/`."""
    out = {}
    has_lib = os.path.exists(os.path.join(src, "lib.rs"))
    for root, _, files in os.walk(src):
        if os.path.relpath(root, src).split(os.sep)[0] == "bin":
            continue
        for f in files:
            if not f.endswith(".rs"):
                continue
            if has_lib and root == src and f == "main.rs":
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            with open(os.path.join(root, f), encoding="utf-8") as fh:
                out["::".join(rel)] = fh.read()
    return out


TOKENS = re.compile(
    r"//[^\n]*"  # a line comment
    r"|/\*.*?\*/"  # a block comment
    r'|(?<!\w)b?r(#*)".*?"\1'  # a raw string
    r'|"(?:[^"\\]|\\.)*"'  # a string
    r"|'(?:[^'\\\n]|\\[^']{1,9})'",  # a character (a lifetime has no closing quote)
    re.S,
)


def strip(text):
    """The code without comments and literals (which may hold `//`, quotes or `crate::x`),
    read left to right in one pass so a `//` inside a string is not a comment."""

    def blank(m):
        t = m.group(0)
        if t.startswith("/"):
            return " "
        return "' '" if t.startswith("'") else '""'

    text = TOKENS.sub(blank, text)
    # Test modules depend on anything; they are not the file's structure.
    cut = re.search(r"#\[cfg\(test\)\]\s*mod tests", text)
    return text[: cut.start()] if cut else text


def expand_use(text):
    """Every path a `use` names, its `{…}` groups expanded: `use a::{b, c::d};` → a::b, a::c::d."""
    paths = []

    def walk(prefix, body):
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(body):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(body[start:i])
                start = i + 1
        parts.append(body[start:])
        for p in parts:
            p = re.sub(r"\s+as\s+\w+", "", p.strip())
            if not p:
                continue
            m = re.match(r"^([\w:]*?)::\{(.*)\}$", p, re.S)
            if m:
                walk(prefix + m.group(1) + "::", m.group(2))
            elif p.startswith("{") and p.endswith("}"):
                walk(prefix, p[1:-1])
            else:
                paths.append(prefix + p)

    # `pub use` re-exports a facade; it is not the file using anything.
    for m in re.finditer(r"(?<!pub )(?<!pub\(crate\) )\buse\s+([^;]+);", text, re.S):
        walk("", m.group(1))
    return paths


def resolve(path, here, mods, children):
    """The module a path names, from module `here`; None when it is not this crate's."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    cur = here.split("::") if here else []
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    elif segs[0] == "super":
        base = cur
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
    elif segs[0] == "self":
        base, segs = cur, segs[1:]
    elif segs[0] in children.get(here, ()):
        base = cur
    else:
        return None
    best = "::".join(base)
    for i in range(len(segs)):
        cand = "::".join(base + segs[: i + 1])
        if cand in mods:
            best = cand
        else:
            break
    return best


def graph(mods):
    children = {m: set() for m in mods}
    for m in mods:
        if m:
            parent = "::".join(m.split("::")[:-1])
            children.setdefault(parent, set()).add(m.split("::")[-1])
    g = {m: set() for m in mods}
    for here, text in mods.items():
        text = strip(text)
        paths = expand_use(text)
        body = re.sub(r"\buse\s+[^;]+;", "", text, flags=re.S)
        # A `#[macro_export]` macro is named from the crate root wherever it is defined.
        body = re.sub(r"\bcrate::\w+!", "", body)
        paths += re.findall(r"\b(?:crate|super|self)(?:::\w+)+", body)
        for child in children.get(here, ()):
            paths += re.findall(r"(?<![\w:])" + re.escape(child) + r"(?:::\w+)+", body)
        for p in paths:
            t = resolve(p, here, mods, children)
            if t is not None and t != here:
                g[here].add(t)
    return g


def cycles(g):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def main(srcs):
    total = 0
    for src in srcs:
        mods = modules(src)
        g = graph(mods)
        for comp in cycles(g):
            total += 1
            name = lambda m: m or "(crate root)"
            edges = ", ".join(
                f"{name(a)} -> {name(b)}" for a in comp for b in sorted(g[a]) if b in comp
            )
            print(f"{src}: cycle among {[name(m) for m in comp]}: {edges}")
    print(f"{total} import cycle(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
