#!/usr/bin/env python3
"""gen-man.py - make libfiber's manual pages from include/fiber.h.

The header is the one source: each public function's comment becomes its
page in section 3, and the header's opening comment and section comments
become libfiber(7), so the pages cannot say something the header does not.

How the header is read:
- A comment right above a FIBER_API declaration documents it; functions
  declared right after it with no comment of their own (the _until
  variants) share its page, and get a page of their own that is a .so
  link to it, as libcurl's and OpenSSL's manuals do.
- A comment whose first line is a rule of dashes opens a section: the
  title is on the rule ("---- Task groups ----") or on the line after it.
  A title beginning with "end of" closes one and is skipped.
- In a comment, a line indented deeper than the text is shown as it is
  (code, tables), a line beginning with "- " starts a bulleted item, and
  a blank line starts a paragraph.

Usage:
  gen-man.py --header fiber.h --template libfiber.7.in --outdir DIR --version V
      writes DIR/<function>.3 for every function and DIR/libfiber.7;
  gen-man.py --header fiber.h --list
      prints man/pages.am, the list of pages that Makefile.am installs.
Fails, naming the function, when a function has no comment.
"""

import argparse
import datetime
import os
import re
import sys
import textwrap

FUNC_DECL = re.compile(r'^FIBER_API\b')
NAME_IN_DECL = re.compile(r'\b(fiber_[a-z0-9_]+)\s*\(')
RULE = re.compile(r'^-{4,}\s*(.*?)\s*-*\s*$')
# Types and constants shown in libfiber(7), with the comment above them.
TYPE_START = re.compile(r'^(typedef\b|enum\b|struct\b|#define FIBER_(?!API\b|H\b)[A-Z0-9_]+\b)')


class Group:
    """One documented page: a comment and the functions it documents."""

    def __init__(self, comment, section):
        self.comment = comment
        self.section = section
        self.decls = []          # (name, declaration lines)

    @property
    def name(self):
        return self.decls[0][0]


class Section:
    def __init__(self, title, body, level):
        self.title = title
        self.body = body
        self.level = level
        self.groups = []
        self.types = []          # (comment or None, code lines)


def comment_lines(raw):
    """The text of a /* */ comment, one string per line, margins removed."""
    text = raw.strip()
    assert text.startswith('/*') and text.endswith('*/')
    text = text[2:-2]
    lines = text.split('\n')
    out = []
    for i, line in enumerate(lines):
        if i > 0:
            line = re.sub(r'^\s*\* ?', '', line, count=1)
            if line.strip() == '*':
                line = ''
        else:
            line = line.strip().lstrip('*').strip()
        out.append(line.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def parse(path):
    """Sections (in order), groups (in order) and the opening comment."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    sections = []
    groups = []
    intro = None
    current_section = Section('Types, constants and versions', [], 1)
    sections.append(current_section)
    last_comment = None      # a comment that nothing has followed yet
    last_group = None        # the group of the declaration just before
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith('/*'):
            raw = [line]
            while '*/' not in raw[-1]:
                i += 1
                raw.append(lines[i])
            i += 1
            text = comment_lines('\n'.join(raw))
            if intro is None:
                intro = text
                continue
            rule = RULE.match(text[0]) if text else None
            if rule:
                title = rule.group(1)
                body = text[1:]
                level = 2 if title else 1
                if not title:
                    while body and not body[0].strip():
                        body.pop(0)
                    title = body.pop(0).strip() if body else ''
                while body and not body[0].strip():
                    body.pop(0)
                if not title.lower().startswith('end of'):
                    current_section = Section(title, body, level)
                    sections.append(current_section)
                last_comment = None
            else:
                last_comment = text
            last_group = None
            continue
        if FUNC_DECL.match(stripped):
            decl = [line]
            while ';' not in decl[-1]:
                i += 1
                decl.append(lines[i])
            i += 1
            m = NAME_IN_DECL.search(' '.join(decl))
            if not m:
                sys.exit('gen-man.py: cannot read the declaration: ' + decl[0])
            name = m.group(1)
            if last_comment is not None:
                last_group = Group(last_comment, current_section)
                groups.append(last_group)
                if current_section:
                    current_section.groups.append(last_group)
                last_comment = None
            elif last_group is None:
                sys.exit('gen-man.py: %s has no comment above it in %s' % (name, path))
            last_group.decls.append((name, decl))
            continue
        if TYPE_START.match(stripped):
            code = [line]
            depth = line.count('{') - line.count('}')
            while depth > 0 or code[-1].rstrip().endswith('\\') or \
                    (i + 1 < len(lines) and code[0].startswith('#define') and
                     lines[i + 1].startswith('#define FIBER_')):
                i += 1
                code.append(lines[i])
                depth += lines[i].count('{') - lines[i].count('}')
            i += 1
            current_section.types.append((last_comment, code))
            last_comment = None
            last_group = None
            continue
        if stripped:
            # Other code (types, macros): what comes next needs its own comment.
            last_comment = None
            last_group = None
        i += 1
    return sections, groups, intro or []


# ---------------------------------------------------------------------------
# Text to roff.

def escape(text):
    text = text.replace('\\', '\\e')
    # A minus sign (options, -EINVAL, -1), not a hyphen between letters.
    text = re.sub(r'(?<![A-Za-z])-|-(?![A-Za-z])', r'\\-', text)
    # Characters beyond ASCII as roff's named Unicode escapes, which every
    # formatter reads whatever the encoding it assumes.
    return ''.join(c if ord(c) < 128 else '\\[u%04X]' % ord(c) for c in text)


def line_start(text):
    """Keep roff from reading a line as a request or a break."""
    if text.startswith(('.', "'")):
        return '\\&' + text
    return text


def inline(text, names, at_start=True):
    """Escape a line of prose, setting code and public names in bold."""
    parts = re.split(r'(`[^`]*`)', text)
    out = []
    for part in parts:
        if part.startswith('`') and part.endswith('`') and len(part) > 1:
            out.append('\\fB' + escape(part[1:-1]) + '\\fR')
            continue
        part = escape(part)
        part = re.sub(r'\b(fiber_[a-z0-9_]+)\b',
                      lambda m: ('\\fB%s\\fR' % m.group(1)) if m.group(1) in names else m.group(1),
                      part)
        part = re.sub(r'\b(FIBER_[A-Z0-9_]+)\b', r'\\fB\1\\fR', part)
        out.append(part)
    text = ''.join(out)
    return line_start(text) if at_start else text


def fill(lines, names, lead=''):
    """A paragraph as roff: one sentence per line (the header puts two
    spaces between sentences), each wrapped at 78 columns."""
    text = ' '.join(l.strip() for l in lines)
    out = []
    for k, sentence in enumerate(re.split(r'(?<=[.!?:])  +', text)):
        sentence = inline(sentence, names, at_start=False)
        if k == 0 and lead:
            sentence = lead + sentence
        out.extend(line_start(w) for w in wrap(sentence))
    return out


def wrap(text):
    return textwrap.wrap(text, 78, break_long_words=False, break_on_hyphens=False) or ['']


def indent_of(line):
    return len(line) - len(line.lstrip(' '))


def blocks(lines):
    """Split comment lines into ('para', [lines]), ('bullets', [[lines]...])
    and ('literal', [lines]) blocks."""
    result = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            result.append(('break', None))
            i += 1
            continue
        ind = indent_of(line)
        if line.lstrip().startswith('- '):
            items = []
            while i < n and lines[i].strip() and lines[i].lstrip().startswith('- ') \
                    and indent_of(lines[i]) == ind:
                item = [lines[i].lstrip()[2:]]
                i += 1
                while i < n and lines[i].strip() and indent_of(lines[i]) > ind \
                        and not lines[i].lstrip().startswith('- '):
                    item.append(lines[i].strip())
                    i += 1
                items.append(item)
            result.append(('bullets', items))
            continue
        if ind > 0:
            lit = []
            base = ind
            while i < n:
                if lines[i].strip() and indent_of(lines[i]) >= 1 and \
                        not (lines[i].lstrip().startswith('- ') and indent_of(lines[i]) == base
                             and not lit):
                    lit.append(lines[i])
                    i += 1
                elif not lines[i].strip() and i + 1 < n and lines[i + 1].strip() \
                        and indent_of(lines[i + 1]) >= base:
                    lit.append('')
                    i += 1
                else:
                    break
            base = min(indent_of(l) for l in lit if l.strip())
            result.append(('literal', [l[base:] for l in lit]))
            continue
        para = []
        while i < n and lines[i].strip() and indent_of(lines[i]) == 0 \
                and not lines[i].startswith('- '):
            para.append(lines[i])
            i += 1
        result.append(('para', para))
    return result


def render(lines, names, start_paragraph=True, lead=''):
    """roff for comment lines; lead (roff) opens the first paragraph."""
    out = []
    need_pp = start_paragraph
    for kind, body in blocks(lines):
        if kind == 'break':
            need_pp = True
            continue
        if kind == 'para':
            if need_pp or (out and out[-1] in ('.fi', '.RE')):
                out.append('.PP')
            out.extend(fill(body, names, lead))
            lead = ''

        elif kind == 'bullets':
            for item in body:
                out.append('.IP \\(bu 2')
                out.extend(fill(item, names))
            out.append('.PP')
            need_pp = False
            continue
        elif kind == 'literal':
            if need_pp:
                out.append('.PP')
            out.append('.RS 4')
            out.append('.nf')
            for l in body:
                out.append(line_start(escape(l)) if l else '')
            out.append('.fi')
            out.append('.RE')
        need_pp = False
    # A list followed by a paragraph would open two paragraphs in a row.
    out = [l for k, l in enumerate(out)
           if not (l == '.PP' and k > 0 and out[k - 1] == '.PP')]
    # A list or block at the very end needs nothing after it.
    while out and out[-1] == '.PP':
        out.pop()
    # Empty lines mean a blank line in roff; inside .nf they are kept, and
    # elsewhere there are none.
    return [l if l else '' for l in out]


def summary(text):
    """The NAME line's description: the first sentence of the comment."""
    first = []
    for line in text:
        if not line.strip():
            break
        first.append(line.strip())
    s = ' '.join(first)
    m = re.search(r'\.(\s|$)', s)
    if m:
        s = s[:m.start()]
    return s


def strip_name(comment, name):
    """The comment without its leading "name - "."""
    text = list(comment)
    m = re.match(r'^(fiber_[a-z0-9_]+)\s+-\s+(.*)$', text[0])
    if m and m.group(1) == name:
        text[0] = m.group(2)
    return text


def date_of(path):
    epoch = os.environ.get('SOURCE_DATE_EPOCH')
    when = int(epoch) if epoch else int(os.stat(path).st_mtime)
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime('%Y-%m-%d')


def th(title, section, date, version):
    return '.TH %s %s %s "libfiber %s" "libfiber Manual"' % (title, section, date, version)


def synopsis(decls):
    out = ['.SH SYNOPSIS', '.nf', '.B #include <fiber.h>', '.PP']
    for _, decl in decls:
        first = decl[0]
        cut = first.index('FIBER_API') + len('FIBER_API ')
        lines = [first[cut:].strip()]
        for more in decl[1:]:
            lines.append(' ' * max(indent_of(more) - cut, 1) + more.strip())
        for l in lines:
            out.append('\\fB' + escape(l) + '\\fR')
    out.append('.fi')
    out.append('.PP')
    out.append('Compile and link with \\fIpkg\\-config \\-\\-cflags \\-\\-libs libfiber\\fR.')
    return out


def function_page(group, names, date, version):
    name = group.name
    text = strip_name(group.comment, name)
    others = [n for n, _ in group.decls]
    out = [th(name.upper(), 3, date, version)]
    out.append('.SH NAME')
    out.extend(line_start(w) for w in
               wrap(', '.join(escape(n) for n in others) + ' \\- ' + escape(summary(text))))
    out.extend(synopsis(group.decls))
    # "Returns ..." paragraphs that end the comment make RETURN VALUE.
    paras = []
    cur = []
    for line in text:
        if not line.strip():
            if cur:
                paras.append(cur)
            cur = []
        else:
            cur.append(line)
    if cur:
        paras.append(cur)
    k = len(paras)
    while k > 1 and re.match(r'^(Returns|Fails)\b', paras[k - 1][0]):
        k -= 1
    desc = []
    for p in paras[:k]:
        desc.extend(p + [''])
    ret = []
    for p in paras[k:]:
        ret.extend(p + [''])
    out.append('.SH DESCRIPTION')
    if desc:
        # The header's "name - text", with the name set as a function.
        out.extend(render(desc, names, start_paragraph=False,
                          lead='\\fB%s\\fR() \\- ' % name))
    if len(others) > 1:
        out.append('.PP')
        out.extend(wrap('This page also describes ' +
                        ', '.join('\\fB%s\\fR()' % n for n in others[1:]) +
                        ', declared with it.'))
    if ret:
        out.append('.SH RETURN VALUE')
        out.extend(render(ret, names, start_paragraph=False))
    if group.section:
        out.append('.SH NOTES')
        out.extend(wrap('The overview of \\(lq%s\\(rq in' % escape(group.section.title)))
        out.append('.BR libfiber (7)')
        out.append('applies to this call.')
    mentioned = sorted(set(re.findall(r'\b(fiber_[a-z0-9_]+)\b', '\n'.join(group.comment)))
                       & set(names) - set(others))
    out.append('.SH SEE ALSO')
    refs = ['.BR %s (3),' % m for m in mentioned]
    refs.append('.BR libfiber (7)')
    out.extend(refs)
    return '\n'.join(out) + '\n'


def overview_page(template, sections, groups, intro, names, date, version):
    # The opening comment, without its first line ("fiber.h - ...").
    body = intro[1:] if intro and intro[0].startswith('fiber.h') else intro
    parts = []
    for s in sections:
        if not (s.body or s.types or s.groups):
            continue
        parts.append('.SS %s' % escape(s.title))
        parts.extend(render(s.body, names, start_paragraph=False))
        for comment, code in s.types:
            if comment:
                if not parts[-1].startswith('.SS'):
                    parts.append('.PP')
                parts.extend(render(comment, names, start_paragraph=False))
            if not parts[-1].startswith('.SS'):
                parts.append('.PP')
            parts.extend(['.RS 4', '.nf'])
            parts.extend(line_start(escape(l.rstrip())) for l in code)
            parts.extend(['.fi', '.RE'])
        fns = [n for g in s.groups for n, _ in g.decls]
        if fns:
            if not parts[-1].startswith('.SS'):
                parts.append('.PP')
            parts.append('Functions:')
            refs = ['.BR %s (3)%s' % (n, ',' if k + 1 < len(fns) else '')
                    for k, n in enumerate(fns)]
            parts.extend(refs)
    text = template
    text = text.replace('@TH@', th('LIBFIBER', 7, date, version))
    text = text.replace('@OVERVIEW@', '\n'.join(render(body, names, start_paragraph=False)))
    text = text.replace('@SECTIONS@', '\n'.join(parts))
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--header', required=True)
    ap.add_argument('--template')
    ap.add_argument('--outdir')
    ap.add_argument('--version', default='')
    ap.add_argument('--list', action='store_true')
    args = ap.parse_args()

    sections, groups, intro = parse(args.header)
    names = [n for g in groups for n, _ in g.decls]
    if len(set(names)) != len(names):
        sys.exit('gen-man.py: a function is declared twice in ' + args.header)

    if args.list:
        print('# pages.am - the manual pages, one per function of include/fiber.h.')
        print('# Made by: python3 man/gen-man.py --header include/fiber.h --list')
        print('# (make update-man-list); tests/man.sh fails while it is out of date.')
        print('FIBER_MAN3 = \\')
        srt = sorted(names)
        for k, n in enumerate(srt):
            print('\tman/%s.3%s' % (n, ' \\' if k + 1 < len(srt) else ''))
        return

    if not args.outdir or not args.template:
        sys.exit('gen-man.py: --outdir and --template are needed to write pages')
    date = date_of(args.header)
    os.makedirs(args.outdir, exist_ok=True)
    known = set(names)
    for g in groups:
        with open(os.path.join(args.outdir, g.name + '.3'), 'w', encoding='utf-8') as f:
            f.write(function_page(g, known, date, args.version))
        for other, _ in g.decls[1:]:
            with open(os.path.join(args.outdir, other + '.3'), 'w', encoding='utf-8') as f:
                f.write('.so man3/%s.3\n' % g.name)
    with open(args.template, encoding='utf-8') as f:
        template = f.read()
    with open(os.path.join(args.outdir, 'libfiber.7'), 'w', encoding='utf-8') as f:
        f.write(overview_page(template, sections, groups, intro, known, date, args.version))


if __name__ == '__main__':
    main()
