#!/usr/bin/env python3
"""Counts import cycles between the files of each crate: an edge A -> B when A names
crate::B (in a use or a path). Prints the edges in cycles (strongly connected components)."""
import re, sys, os, glob
def mods(src):
    files = {}
    for f in glob.glob(os.path.join(src, '**/*.rs'), recursive=True):
        rel = os.path.relpath(f, src)[:-3]
        name = rel.replace('/mod', '').replace('/', '::')
        if name in ('lib', 'main'): name = 'crate'
        files[name] = open(f).read()
    return files
total = 0
for src in sys.argv[1:]:
    files = mods(src)
    tops = {n.split('::')[0] for n in files if n != 'crate'}
    g = {n: set() for n in files}
    for n, text in files.items():
        if n == 'crate': continue
        text = re.sub(r'//.*', '', text)
        for m in re.finditer(r'crate::(\w+)', text):
            t = m.group(1)
            if t in tops and t != n.split('::')[0]:
                g[n].add(t)
        # use crate::{a, b::c}
        for m in re.finditer(r'use crate::\{([^;]*)\};', text, re.S):
            for part in re.split(r',', m.group(1)):
                t = part.strip().split('::')[0].strip('{} ')
                if t in tops and t != n.split('::')[0]:
                    g[n].add(t)
        if '::' in n:  # submodule: super:: refers to parent
            pass
    # collapse submodules to their top module
    G = {}
    for n, ts in g.items():
        top = n.split('::')[0]
        G.setdefault(top, set()).update(t for t in ts if t != top)
    # tarjan
    idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
    def sc(v):
        idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
        for w in G.get(v, ()):
            if w not in idx: sc(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: sccs.append(comp)
    for v in list(G):
        if v not in idx: sc(v)
    for comp in sccs:
        total += 1
        print(f"{src}: cycle among {sorted(comp)}:", ', '.join(f"{a}->{b}" for a in comp for b in G[a] if b in comp))
print(f"{total} import cycle(s)")
