#!/usr/bin/env bash
# The claims' full profile, one module at a time (each is sized for at most 8 minutes on
# one H100/H200), then one report of all of them:
#
#   bash claims/run_full.sh [OUT] [OFFSET]      (defaults: report-full, 0)
#
# writes OUT/OFFSET/<module>/report.json and figures, and the concatenated
# OUT/OFFSET/report.json; run it at offsets 0 and 1, then
#   python -m claims.summary OUT/0/report.json OUT/1/report.json
# prints the README's table. A module that fails or overruns is reported and the others
# still run; the script exits non-zero if any did.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-report-full}
offset=${2:-0}
status=0
reports=()
for module in claims/test_*.py; do
  name=$(basename "$module" .py)
  echo "== $name (full profile, seed offset $offset)"
  timeout 600 pytest "$module" -p no:cacheprovider -q --claims-profile full \
    --claims-seed-offset "$offset" --claims-report "$out/$offset/$name" || status=1
  [ -f "$out/$offset/$name/report.json" ] && reports+=("$out/$offset/$name/report.json")
done
if [ ${#reports[@]} -gt 0 ]; then
  python -m claims.summary --concatenate "$out/$offset/report.json" "${reports[@]}"
  echo "merged report: $out/$offset/report.json"
fi
exit $status
