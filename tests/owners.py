#!/usr/bin/env python3
"""owners.py - check that each field of struct fiber_task is written by
the module that owns it.

struct fiber_task (lib/core/state.h) groups its fields by owner, each group
opening with a comment "Owner: <module> ...".  This finds every write to
a task's field in lib/ (`t->field = ...`, `t->field += ...`, `++t->field`,
`t->field++`, `t->field.member = ...`, and `.field = ...` in an
initialiser of a struct fiber_task) and fails when a module writes a field
that another module owns.  A write is one to a task's field when what
stands before the arrow is known to point to a task: a variable declared
as one (struct fiber_task *, fiber_task_t *), or a member that points to
one (loop->current, t->waiter, job->waiter, ...).  Writes through calls
(list operations, memset, the task's clearing at spawn) are not seen: they
happen inside the owner's functions.  A few writes are known exceptions,
each with its reason; the test fails on any other, and on an exception
that no longer occurs.

Usage: owners.py [SRCDIR] [--writes]   (prints TAP; --writes lists them)
"""
import collections
import os
import re
import sys

sys.dont_write_bytecode = True   # leave nothing in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import floors  # noqa: E402  (modules of lib/ and comment stripping)

# Writes that stay outside their owner for now: (module, field): reason.
KNOWN = {
    ('loop', 'scope'): 'fiber_entry forgets the scopes of a fiber that has '
                       'returned, whose frames held them: a call up into '
                       'scope.c would be one more upward edge',
    ('loop', 'shields'): 'the same: cleared with the scopes at the return',
    ('loop', 'waiter'): 'abandon_all clears the await links of fibers it '
                        'gives up on; the core may not call up into task.c',
    ('loop', 'awaiting'): 'the same, for the task an abandoned fiber awaited',
    ('compact', 'stack'): 'a compact fiber runs on the shared stack, which '
                          'compact.c maps on first use and sets as its stack',
}

# Members, of any struct of lib/, that point to a task: what stands
# before an arrow ending in one of them is a task.
TASK_MEMBERS = {'current', 'main', 'zombie', 'shared_owner', 'handoff',
                'woken_tail', 'waiter', 'awaiting', 'claimed_by', 'owner',
                'fiber', 'first', 'failed'}

TASK_DECL = re.compile(r'\b(?:struct\s+fiber_task|fiber_task_t)\s*'
                       r'(?:\*\s*(?:const\s+)?)+(\w+)')
ASSIGN = r'(?:[-+*/%&|^]|<<|>>)?=(?!=)|\+\+|--'


def task_fields(text):
    """The fields of struct fiber_task, each with the modules that own its
    group (None for a field in no group)."""
    body = re.search(r'^struct fiber_task \{(.*?)^\};', text, re.S | re.M)
    if not body:
        raise SystemExit('owners.py: no struct fiber_task in lib/core/state.h')
    owner = None
    fields = {}
    raw = body.group(1).split('\n')
    code = strip(body.group(1)).split('\n')
    for line, decl in zip(raw, code):
        m = re.search(r'/\*\s*Owner:\s*(\w+(?:\s*,\s*\w+)*)', line)
        if m:
            owner = frozenset(re.split(r'\s*,\s*', m.group(1)))
        decl = decl.strip()
        if not decl or decl in ('union {', '};'):
            continue
        decl = re.sub(r'\[[^\]]*\]', '', decl.rstrip(';'))
        decl = re.sub(r'\(\s*\*\s*(\w+)\s*\)\s*\(.*\)', r'\1', decl)
        for part in decl.split(','):
            name = re.findall(r'(\w+)\s*$', part.strip())
            if name:
                fields[name[0]] = owner
    return fields


def strip(text):
    """floors.strip, keeping the lines where they were."""
    return floors.STRIP.sub(
        lambda m: '""' if m.group(0)[0] == '"' else
        ' ' + '\n' * m.group(0).count('\n'), text)


def task_names(text):
    """Identifiers declared in text as pointers to a task."""
    return set(TASK_DECL.findall(text))


def is_task(base, names):
    base = re.sub(r'\[[^\]]*\]', '', re.sub(r'\s+', '', base)).strip('()')
    if base.startswith('*'):
        base = base[1:]
    last = re.split(r'->|\.', base)[-1]
    if '->' in base or '.' in base:
        return last in TASK_MEMBERS
    return last in names


# What may stand before an arrow: an identifier with members and
# subscripts, or (*x).
BASE = r'((?:\(\s*\*\s*\w+\s*\)|\w+)(?:\s*(?:->|\.)\s*\w+|\s*\[[^\]]*\])*)'


def writes(root):
    lib = os.path.join(root, 'lib')
    mod, src = floors.modules(lib)
    fields = task_fields(src[os.path.join(lib, 'core', 'state.h')])
    found = collections.defaultdict(list)   # (module, field) -> [where]
    names = '|'.join(sorted(fields, key=len, reverse=True))
    post = re.compile(BASE + r'\s*->\s*(' + names + r')\b((?:\s*\.\s*\w+)*)\s*(' +
                      ASSIGN + r')')
    pre = re.compile(r'(?:\+\+|--)\s*' + BASE + r'\s*->\s*(' + names + r')\b')
    init = re.compile(r'\(\s*struct\s+fiber_task\s*\)\s*\{|'
                      r'\bstruct\s+fiber_task\s+\w+\s*=\s*\{')
    for p, s in sorted(src.items()):
        text = strip(s)
        known = task_names(text)
        where = lambda pos: '%s:%d' % (os.path.basename(p),
                                       text.count('\n', 0, pos) + 1)
        for m in post.finditer(text):
            if is_task(m.group(1), known):
                found[(mod[p], m.group(2))].append(where(m.start()))
        for m in pre.finditer(text):
            if is_task(m.group(1), known):
                found[(mod[p], m.group(2))].append(where(m.start()))
        for m in init.finditer(text):
            depth, i = 1, m.end()
            while depth and i < len(text):
                depth += {'{': 1, '}': -1}.get(text[i], 0)
                i += 1
            for f in re.finditer(r'\.\s*(\w+)\s*=', text[m.end():i]):
                if f.group(1) in fields:
                    found[(mod[p], f.group(1))].append(where(m.end() + f.start()))
    return fields, found


def main(argv):
    root = '.'
    show = False
    for a in argv[1:]:
        if a == '--writes':
            show = True
        else:
            root = a
    fields, found = writes(root)
    if show:
        for (m, f), at in sorted(found.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            owner = ','.join(sorted(fields[f] or ['?']))
            flag = '' if fields[f] and m in fields[f] else '  <-- not the owner'
            print('%-18s %-10s owner %-14s %s%s' % (f, m, owner, ' '.join(at), flag))
        return 0

    failures = [[], [], []]
    for f, owner in sorted(fields.items()):
        if owner is None:
            failures[0].append('fiber_task.%s is in no group: open its group '
                               'with a comment "Owner: <module>"' % f)
    seen = set()
    for (m, f), at in sorted(found.items()):
        owner = fields[f]
        if owner is None or m in owner:
            continue
        if (m, f) in KNOWN:
            seen.add((m, f))
            continue
        failures[1].append('%s writes fiber_task.%s, which %s owns: %s' % (
            m, f, ' and '.join(sorted(owner)), ' '.join(at)))
    for k in sorted(set(KNOWN) - seen):
        failures[2].append('known exception: %s writes %s no longer occurs: '
                           'remove it from KNOWN' % k)

    checks = ['every field of struct fiber_task has an owner',
              'no module writes a task field that another owns',
              'every known exception still occurs']
    return floors.tap_report(checks, failures,
                             ['known: %s writes %s: %s' % (m, f, why)
                              for (m, f), why in sorted(KNOWN.items())])


if __name__ == '__main__':
    sys.exit(main(sys.argv))
