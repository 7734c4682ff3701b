#!/usr/bin/env python3
"""floors.py - check that the modules of lib/ call each other one way.

Each module of lib/ (x.c and x.h together) stands on a floor: the core,
the features built on it, or the observers that watch both.  An edge goes
from a module to another when it includes the other's header or names a
fiber__ function or variable the other defines.  Edges may point down or
stay on their floor, never up, and the graph may have no cycle.  A few
edges are known exceptions, each with its reason; any other upward edge
or cycle fails, as does a module that has no floor.

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

FLOORS = {
    # The loop (with the table of hooks and the list of extensions through
    # which it reaches above), its wait queues, and what it stands on.
    CORE: '''list clock context stack timer_heap sanitizers compact waitq
             loop libc_direct''',
    # What users call, each plugging into the core.
    FEATURES: '''sleep task gather scope collector group waitset sync queue
                 io poller tcp net sockname stream communicate thread_pool
                 process signals random version''',
    # Debugging aids, reached from below only through the hooks.
    OBSERVERS: '''debug observe dump backtrace trace timeline overflow
                  hook_support''',
    # fiber_run, which hands the observers' table to the loop.
    ENTRY: 'run',
}

# Upward edges and cycles not mended yet: (from, to): reason.  The test
# fails on any other, and on an exception that no longer occurs.
KNOWN = {
    ('compact', 'loop'): 'compact.c moves the frames of a task, whose struct '
                         'loop.h defines with the loop that calls it',
    ('loop', 'waitq'): 'fiber__wake and abandon_all unlink a fiber from its '
                       'wait queue by name, until a wait carries its unlink',
    ('loop', 'scope'): 'fiber__block, fiber__cancel and the entry check ask '
                       'the timeout scopes by name (the tie rule)',
    ('loop', 'debug'): 'the entry checks in loop.h report a call made outside '
                       'a fiber by name: with no loop there is no table',
    ('loop', 'collector'): 'a returning fiber closes the groups and waitsets '
                           'it owns and tells its own, by name',
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
    files = sorted(glob.glob(os.path.join(lib, '*.c')) +
                   glob.glob(os.path.join(lib, '*.h')))
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
    return names, edges


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
    floor = {m: f for f, ms in FLOORS.items() for m in ms.split()}
    names, edges = graph(root)
    if show:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print('%-12s %-9s -> %-12s %-9s %s' % (
                    a, FLOOR_NAMES.get(floor.get(a), '?'), b,
                    FLOOR_NAMES.get(floor.get(b), '?'), edges[a][b]))
        return 0

    failures = [[], [], [], []]
    for m in sorted(names - set(floor)):
        failures[0].append('lib/%s has no floor: add it to FLOORS' % m)
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
    print('1..%d' % len(checks))
    for i, (what, bad) in enumerate(zip(checks, failures), 1):
        for line in bad:
            print('# ' + line)
        print('%sok %d - %s' % ('not ' if bad else '', i, what))
    for (a, b), why in sorted(KNOWN.items()):
        print('# known: %s -> %s: %s' % (a, b, why))
    return 1 if any(failures) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
