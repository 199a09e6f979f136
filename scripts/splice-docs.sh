#!/usr/bin/env bash
# Replaces what lies between `<!-- NAME:begin -->` and `<!-- NAME:end -->`
# in FILE with standard input: generated sections of hand-written docs.
#   scripts/splice-docs.sh NAME FILE < generated.md
set -euo pipefail
name=$1 file=$2
gen=$(mktemp)
trap 'rm -f "$gen"' EXIT
cat > "$gen"
grep -q "^<!-- $name:begin -->\$" "$file" || { echo "$file: no <!-- $name:begin --> marker" >&2; exit 1; }
grep -q "^<!-- $name:end -->\$" "$file" || { echo "$file: no <!-- $name:end --> marker" >&2; exit 1; }
awk -v b="<!-- $name:begin -->" -v e="<!-- $name:end -->" -v gen="$gen" '
  $0 == b { print; while ((getline l < gen) > 0) print l; skip = 1; next }
  $0 == e { skip = 0 }
  !skip { print }
' "$file" > "$file.new"
mv "$file.new" "$file"
