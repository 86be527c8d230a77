#!/bin/sh
# scan-build-check.sh REPORT-DIR KNOWN-FILE: compare clang's static analyzer
# findings (scan-build's HTML reports) with the reviewed ones (`make
# scan-build`, docs/ANALYSIS.md).  A finding is "file|function|type|message"
# (no line number: edits above it do not turn it new).  Prints the counts and
# every finding not in KNOWN-FILE; fails if there is one.  Findings of
# KNOWN-FILE that are gone are listed too (remove them from the file).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -e
dir=$1
known=$2
found=$(mktemp)
expected=$(mktemp)
trap 'rm -f "$found" "$expected"' EXIT
field() {
    sed -n "s/.*<!-- $1 \(.*\) -->.*/\1/p" "$2" | head -n 1
}
total=0
for f in $(find "$dir" -name 'report-*.html' 2>/dev/null); do
    total=$((total + 1))
    file=$(field BUGFILE "$f" | sed 's|.*/tree/||')
    printf '%s|%s|%s|%s\n' "$file" "$(field FUNCTIONNAME "$f")" \
        "$(field BUGTYPE "$f")" "$(field BUGDESC "$f")" >> "$found"
done
sort -u -o "$found" "$found"
grep -v '^#' "$known" | grep -v '^$' | sort -u > "$expected" || true
new=$(comm -23 "$found" "$expected")
gone=$(comm -13 "$found" "$expected")
echo "scan-build: $total reports, $(wc -l < "$found") distinct findings," \
     "$(comm -12 "$found" "$expected" | wc -l) of them reviewed (docs/ANALYSIS.md)"
if [ -n "$gone" ]; then
    echo "reviewed findings no longer reported (remove them from $known):"
    echo "$gone" | sed 's/^/  /'
fi
if [ -n "$new" ]; then
    echo "NEW findings (fix them, or explain them in docs/ANALYSIS.md and $known):"
    echo "$new" | sed 's/^/  /'
    echo "reports: $dir"
    exit 1
fi
