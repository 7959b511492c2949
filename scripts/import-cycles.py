#!/usr/bin/env python3
"""Import cycles between the files of one crate: its source directory, `src` (the daemon) unless
another is given (`sim/src`, the simulators). Paths print as `crate::…` within that crate.

A file imports another when its code names a path into it: `use crate::a::b::…`, `use super::…`,
or such a path written inline (`crate::store::outbox::enqueue(…)`). A name a `mod.rs` re-exports
(`pub use context::Pipeline;`) counts as the file that defines it. Comments and `#[cfg(test)]`
modules are left out: tests may reach anywhere.

Prints every group of files that import one another in a circle (strongly connected components,
with one cycle spelled out), then the same for the top-level modules (`pipeline`, `observe`, …) as
information. Exits 1 if files import each other in a circle that the known list does not name,
so CI can run it:

    python3 scripts/import-cycles.py [--known scripts/import-cycles.known] [src-dir]
    python3 scripts/import-cycles.py --known scripts/import-cycles.sim.known sim/src

Each crate has its own known list (the daemon's is empty: no cycle is allowed there). The list (one cycle a line: its files, comma-separated, as printed) is a ratchet: cycles
there do not fail the run, a new one does, and a line whose cycle is gone is reported so it can
be deleted. It only ever shrinks.

Why not `cargo modules dependencies --lib --acyclic`: the tool needs a recent Rust toolchain and
takes minutes to build (rust-analyzer's crates); this needs only Python and runs in a second.
"""

import re
import sys
from pathlib import Path

ARGS = sys.argv[1:]
KNOWN = set()
if ARGS[:1] == ["--known"]:
    for line in Path(ARGS[1]).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            KNOWN.add(frozenset(part.strip() for part in line.split(",")))
    ARGS = ARGS[2:]
SRC = Path(ARGS[0] if ARGS else "src")


def module_of(path: Path) -> tuple:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip(text: str) -> str:
    """Code without comments, string contents or the `#[cfg(test)]` module."""
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod \w+ \{", text, re.M)
    if cut:
        text = text[: cut.start()]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def expand(tree: str) -> list:
    """`a::{b, c::{d, e}}` → [`a::b`, `a::c::d`, `a::c::e`]."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [tree]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rindex("}")]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    out = []
    for part in filter(None, parts):
        for sub in expand(part):
            out.append(prefix + sub if sub != "self" else prefix.rstrip(":"))
    return out


def main() -> int:
    files = {module_of(p): p for p in sorted(SRC.rglob("*.rs"))}
    codes = {m: strip(p.read_text()) for m, p in files.items()}
    # Names re-exported by a module: (module, name) → the module defining it.
    reexports = {}
    for m, code in codes.items():
        for tree in re.findall(r"^\s*pub use ([^;]+);", code, re.M):
            for path in expand(tree):
                segments = path.split("::")
                if segments[0] in ("crate", "super", "self"):
                    continue
                target = m + tuple(segments[:-1])
                if target in files:
                    reexports[(m, segments[-1].split(" as ")[-1])] = target

    def resolve(m: tuple, path: str):
        segments = [s for s in path.split("::") if s]
        if not segments:
            return None
        if segments[0] == "crate":
            base, rest = (), segments[1:]
        elif segments[0] in ("super", "self"):
            base = m
            while segments and segments[0] in ("super", "self"):
                if segments.pop(0) == "super":
                    base = base[:-1]
            rest = segments
        else:
            return None
        target = base
        for segment in rest:
            if target + (segment,) in files:
                target = target + (segment,)
            elif (target, segment) in reexports:
                return reexports[(target, segment)]
            else:
                break
        return target

    edges = {m: set() for m in files}
    for m, code in codes.items():
        paths = []
        for tree in re.findall(r"\buse ((?:crate|super|self)::[^;]+);", code):
            paths.extend(expand(tree))
        paths.extend(re.findall(r"(?<![\w:])((?:crate|super)(?:::\w+)+)", code))
        for path in paths:
            target = resolve(m, path)
            # A file's own parent module declares it (`mod x;`): naming the parent's items is
            # an edge only when the parent is a real file with items, which `resolve` returns.
            if target is not None and target != m and target in files:
                edges[m].add(target)

    def name(m):
        return "::".join(("crate",) + m)

    file_cycles = report("files", edges, name, KNOWN)
    top = {}
    for m, targets in edges.items():
        for t in targets:
            a, b = m[:1], t[:1]
            if a and b and a != b:
                top.setdefault(a, set()).add(b)
    for m in list(top):
        for t in top[m]:
            top.setdefault(t, set())
    report("top-level modules (information)", top, name, None)
    return 1 if file_cycles else 0


def report(what, edges, name, known) -> int:
    """Prints the cycles; returns how many are new (not in `known`; `None`: information only)."""
    sccs = [c for c in tarjan(edges) if len(c) > 1]
    print(f"== import cycles between {what}: {len(sccs)}")
    new = 0
    found = set()
    for scc in sccs:
        members = sorted(scc)
        names = frozenset(name(m) for m in members)
        found.add(names)
        if known is None:
            print("  " + ", ".join(name(m) for m in members))
        else:
            new += names not in known
            mark = "known" if names in known else "NEW"
            print(f"  [{mark}] " + ", ".join(name(m) for m in members))
        print("    e.g. " + " → ".join(name(m) for m in one_cycle(edges, set(scc), members[0])))
    for gone in sorted(", ".join(sorted(k)) for k in (known or set()) - found):
        print(f"  [gone: delete from the known list] {gone}")
    return new


def tarjan(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            out.append(scc)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def one_cycle(edges, scc, start):
    """A shortest path from `start` back to itself inside `scc` (breadth first)."""
    previous, queue = {}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, ())):
            if w not in scc:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return path[::-1] + [start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    return [start]


if __name__ == "__main__":
    sys.exit(main())
