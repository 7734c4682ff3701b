#!/bin/bash
# man.sh - the manual pages: every function declared in fiber.h has one,
# each page is what man/gen-man.py makes from the header now, .so links
# lead to pages that exist, and mandoc finds nothing wrong in them.  Speaks
# TAP.
#
# A function added to fiber.h fails the first check until man/pages.am
# lists its page: run 'make update-man-list' (and autoreconf).
set -u
. "${top_srcdir:-.}/tests/tap_helpers.sh"
make_scratch
srcdir=${top_srcdir:-.}
builddir=${top_builddir:-.}

# The pages make installs, as Makefile.am lists them; by hand, pages.am.
pages=${FIBER_MAN_PAGES:-}
if [ -z "$pages" ]; then
    pages="man/libfiber.7 $(sed -n 's|^[[:space:]]*\(man/[a-z0-9_]*\.3\).*|\1|p' "$srcdir/man/pages.am")"
fi
# A page is made in the build tree, or shipped in the source tree.
where() {
    if [ -f "$builddir/$1" ]; then echo "$builddir/$1"; else echo "$srcdir/$1"; fi
}

declared=$(grep -oE '^FIBER_API [^(]*\b(fiber_[a-z0-9_]+)\(' "$srcdir/include/fiber.h" |
           grep -oE 'fiber_[a-z0-9_]+\($' | tr -d '(' | LC_ALL=C sort -u)
paged=$(for p in $pages; do basename "$p"; done | sed -n 's/\.3$//p' | LC_ALL=C sort -u)

every_function_has_a_page() {
    local missing
    missing=$(LC_ALL=C comm -23 <(echo "$declared") <(echo "$paged"))
    [ -z "$missing" ] && return 0
    echo "$missing" | sed 's/^/# no page for: /'
    echo "# run 'make update-man-list', then autoreconf"
    return 1
}
check "every function declared in fiber.h has a manual page" every_function_has_a_page

every_page_has_a_function() {
    local stale
    stale=$(LC_ALL=C comm -13 <(echo "$declared") <(echo "$paged"))
    [ -z "$stale" ] && return 0
    echo "$stale" | sed 's/^/# a page for a function fiber.h does not declare: /'
    return 1
}
check "every section 3 page is a function of fiber.h" every_page_has_a_function

pages_exist_and_links_lead_somewhere() {
    local p f target ok=0
    for p in $pages; do
        f=$(where "$p")
        if [ ! -s "$f" ]; then
            echo "# missing: $p"; ok=1; continue
        fi
        target=$(sed -n 's|^\.so man3/||p' "$f")
        if [ -n "$target" ] && ! echo "$pages" | tr ' ' '\n' | grep -qx "man/$target"; then
            echo "# $p links to man3/$target, which is not installed"; ok=1
        fi
    done
    return $ok
}
check "every page exists and every .so link leads to a page" pages_exist_and_links_lead_somewhere

# The pages say what the header says now: made again, they are the same.
pages_match_the_header() {
    local p version
    version=$(sed -n 's/.*"libfiber \([^"]*\)" "libfiber Manual".*/\1/p' "$(where man/libfiber.7)")
    "$python" "$srcdir/man/gen-man.py" --header "$srcdir/include/fiber.h" \
        --template "$srcdir/man/libfiber.7.in" --outdir "$scratch/man" \
        --version "$version" || return 1
    for p in $pages; do
        if ! cmp -s "$(where "$p")" "$scratch/man/$(basename "$p")"; then
            echo "# $p differs from what gen-man.py makes of fiber.h now"
            return 1
        fi
    done
}
python=${PYTHON3:-python3}
if command -v "$python" >/dev/null 2>&1; then
    check "the pages are what gen-man.py makes of fiber.h" pages_match_the_header
else
    results+=("ok $((${#results[@]} + 1)) # SKIP python3 not found: pages not compared with fiber.h")
fi

lint() {
    local p f out ok=0
    for p in $pages; do
        f=$(where "$p")
        grep -q '^\.so ' "$f" && continue
        out=$("$MANDOC" -T lint -W warning "$f" 2>&1)
        if [ -n "$out" ]; then
            echo "$out" | sed 's/^/# /'
            ok=1
        fi
    done
    return $ok
}
MANDOC=${MANDOC:-}
if [ -n "$MANDOC" ] && command -v "$MANDOC" >/dev/null 2>&1; then
    check "mandoc -T lint finds no warning in any page" lint
else
    results+=("ok $((${#results[@]} + 1)) # SKIP mandoc not found (apt-get install mandoc): pages not linted")
fi

print_results
exit 0
