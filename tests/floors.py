#!/usr/bin/env python3
"""floors.py - check that the modules of lib/ call each other one way.

Each module of lib/ (x.c and x.h together) stands on a floor, the folder
it is in: the core (lib/core), the features built on it (lib/tasks,
lib/sync, lib/io), the observers that watch both (lib/debug), and lib/
itself, the entry (fiber_run).  An edge goes
from a module to another when it includes the other's header or names a
fiber__ function or variable the other defines.  Edges may point down or
stay on their floor, never up, and the graph may have no cycle.  A few
edges are known exceptions, each with its reason; any other upward edge
or cycle fails, as does a module in a folder that is no floor.

Usage: floors.py [SRCDIR] [--edges]   (prints TAP; --edges lists them all)
"""
import collections
import glob
import os
import re
import sys

CORE, FEATURES, OBSERVERS, ENTRY = 0, 1, 2, 3
FLOOR_NAMES = {CORE: 'core', FEATURES: 'features', OBSERVERS: 'observers',
               ENTRY: 'entry'}

# The floor of a module is the folder of lib/ it stands in.
FOLDERS = {
    # The loop (with the table of hooks and the list of extensions through
    # which it reaches above), its wait queues, and what it stands on: the
    # layout of the loop and its tasks (state.h) among it.
    'core': CORE,
    # What users call, each plugging into the core: tasks and what waits
    # for them, coordination, and the world outside (descriptors, threads,
    # processes, signals).
    'tasks': FEATURES,
    'sync': FEATURES,
    'io': FEATURES,
    # Debugging aids, reached from below only through the hooks and the
    # report of calls made outside a fiber, both handed over by run.c.
    'debug': OBSERVERS,
    # lib/ itself: fiber_run, which hands the observers' table and report
    # to the core, and fiber_version.
    '': ENTRY,
}

# Upward edges and cycles not mended yet: (from, to): reason.  The test
# fails on any other, and on an exception that no longer occurs.
KNOWN = {
}

STRIP = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
                   re.S)


def strip(text):
    return STRIP.sub(lambda m: '""' if m.group(0)[0] == '"' else ' ', text)


FN_DEF = re.compile(r'^[A-Za-z_][\w \*]*?\b(fiber__\w+)\s*\([^;{]*\)\s*'
                    r'(?:__attribute__\s*\(\(.*?\)\)\s*)*\{', re.M | re.S)


def modules(lib):
    """Map each file of lib/ to its module.  A .c file that another .c
    file includes (one per context switch) belongs to the includer; one
    without a header of its own whose internal functions another module's
    header declares (timeline.c, the trace's text form) belongs to that
    module."""
    files = sorted(glob.glob(os.path.join(lib, '*.[ch]')) +
                   glob.glob(os.path.join(lib, '*', '*.[ch]')))
    mod = {p: os.path.splitext(os.path.basename(p))[0] for p in files}
    src = {p: open(p, encoding='utf-8').read() for p in files}
    for p, s in src.items():
        for inc in re.findall(r'#\s*include\s+"(\w+)\.c"', s):
            q = os.path.join(lib, inc + '.c')
            if q in mod:
                mod[q] = mod[p]
    headers = {p: strip(s) for p, s in src.items() if p.endswith('.h')}
    for p, s in src.items():
        if not p.endswith('.c') or (p[:-2] + '.h') in src:
            continue
        owners = set()
        for name in set(FN_DEF.findall(strip(s))):
            owners |= {mod[h] for h, t in headers.items()
                       if re.search(r'\b%s\s*\(' % name, t)}
        if len(owners) == 1:
            mod[p] = owners.pop()
    return mod, src


def graph(root):
    lib = os.path.join(root, 'lib')
    mod, src = modules(lib)
    text = {p: strip(s) for p, s in src.items()}
    names = set(mod.values())
    # Where each fiber__ function or variable is defined (not declared).
    defs = {}
    var_def = re.compile(r'^(?!extern\b)[A-Za-z_][\w \*]*?\b(fiber__\w+)\s*'
                         r'(?:\[[^\]]*\])?\s*(?:__attribute__\s*\(\(.*?\)\)\s*)?'
                         r'(?:=|;)', re.M)
    for p, t in text.items():
        for m in FN_DEF.finditer(t):
            defs.setdefault(m.group(1), mod[p])
        for m in var_def.finditer(t):
            if not p.endswith('.h'):
                defs.setdefault(m.group(1), mod[p])
    edges = collections.defaultdict(dict)   # a -> {b: why}
    for p, s in src.items():
        a = mod[p]
        for inc in re.findall(r'#\s*include\s+"(\w+)\.h"', s):
            if inc in names and inc != a:
                edges[a].setdefault(inc, '%s includes %s.h'
                                    % (os.path.basename(p), inc))
        for name in sorted(set(re.findall(r'\b(fiber__\w+)\b', text[p]))):
            b = defs.get(name)
            if b and b != a:
                edges[a].setdefault(b, '%s uses %s'
                                    % (os.path.basename(p), name))
    # The folder each module stands in ('' for lib/ itself).
    folder = {}
    for p, m in mod.items():
        d = os.path.relpath(os.path.dirname(p), lib)
        folder.setdefault(m, '' if d == '.' else d)
    return names, edges, folder


def cycles(nodes, edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
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
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main(argv):
    root = '.'
    show = False
    for a in argv[1:]:
        if a == '--edges':
            show = True
        else:
            root = a
    names, edges, folder = graph(root)
    floor = {m: FOLDERS[d] for m, d in folder.items() if d in FOLDERS}
    if show:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print('%-12s %-9s -> %-12s %-9s %s' % (
                    a, FLOOR_NAMES.get(floor.get(a), '?'), b,
                    FLOOR_NAMES.get(floor.get(b), '?'), edges[a][b]))
        return 0

    failures = [[], [], [], []]
    for m in sorted(names - set(floor)):
        failures[0].append('lib/%s/%s stands in no folder of FOLDERS'
                           % (folder[m], m))
    seen_known = set()
    kept = collections.defaultdict(set)   # the graph without known edges
    for a in sorted(edges):
        for b in sorted(edges[a]):
            if (a, b) in KNOWN:
                seen_known.add((a, b))
                continue
            kept[a].add(b)
            if a in floor and b in floor and floor[a] < floor[b]:
                failures[1].append('%s (%s) -> %s (%s): %s' % (
                    a, FLOOR_NAMES[floor[a]], b, FLOOR_NAMES[floor[b]],
                    edges[a][b]))
    for comp in cycles(names, kept):
        inner = ['%s -> %s (%s)' % (a, b, edges[a][b])
                 for a in comp for b in sorted(kept[a]) if b in comp]
        failures[2].append('cycle of %d: %s; edges: %s' % (
            len(comp), ' '.join(comp), '; '.join(inner)))
    for k in sorted(set(KNOWN) - seen_known):
        failures[3].append('known exception %s -> %s no longer occurs: '
                           'remove it from KNOWN' % k)

    checks = ['every module of lib/ has a floor',
              'no edge points from a lower floor to a higher one',
              'no cycle among the modules of lib/',
              'every known exception still occurs']
    return tap_report(checks, failures,
                      ['known: %s -> %s: %s' % (a, b, why)
                       for (a, b), why in sorted(KNOWN.items())])


def tap_report(checks, failures, notes):
    """Print checks as TAP, each with its failures as comments, then the
    notes; return the exit status (1 if any check failed)."""
    print('1..%d' % len(checks))
    for i, (what, bad) in enumerate(zip(checks, failures), 1):
        for line in bad:
            print('# ' + line)
        print('%sok %d - %s' % ('not ' if bad else '', i, what))
    for line in notes:
        print('# ' + line)
    return 1 if any(failures) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
