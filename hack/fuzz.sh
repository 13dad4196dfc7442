#!/usr/bin/env bash
# Runs every Fuzz* target in the module for $FUZZTIME (default 30s) each.
# `make test` already runs each target on its seed corpus; this goes further.
#
# A target fails the run when go test fails and writes a reproducer under
# testdata/fuzz/<target>/. Go 1.26's fuzzing coordinator can also fail a
# target with a bare "context deadline exceeded" at the end of -fuzztime,
# having found nothing (Go issue 75804, fixed in Go 1.27); such a
# target is run once more, and fails the run only if that fails too.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
failed=()

# corpus lists the files of a target's corpus directory, if any.
corpus() { ls "$1" 2>/dev/null | sort; }

for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    seeds="$dir/testdata/fuzz/$target"
    for attempt in 1 2; do
      echo "== $pkg $target ($fuzztime)"
      before=$(corpus "$seeds")
      log=$(mktemp)
      go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$log"
      rc=${PIPESTATUS[0]}
      new=$(comm -13 <(echo "$before") <(corpus "$seeds"))
      deadline=$(grep -c '^    context deadline exceeded$' "$log")
      rm -f "$log"
      if [ "$rc" -eq 0 ]; then
        break
      fi
      if [ -n "$new" ]; then
        echo "!! $target: reproducer written: $seeds/$new"
        failed+=("$pkg $target")
        break
      fi
      if [ "$attempt" -eq 1 ] && [ "$deadline" -gt 0 ]; then
        echo "!! $target: failed at the deadline with no reproducer (Go issue 75804); running it again"
        continue
      fi
      failed+=("$pkg $target")
      break
    done
  done
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing failed:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "fuzzing passed"
