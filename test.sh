#!/usr/bin/env bash
# The whole test suite: formatting, vet, unit and e2e tests with the race
# detector, and a short run of every fuzz target. `.ci/run` runs this.
# As root it installs runc and busybox-static when missing; the e2e tests
# need them (and root) and skip, saying so, without them.
set -euo pipefail
cd "$(dirname "$0")"

.ci/deps

echo "--- go mod download, tools"
go mod download
go build -o /dev/null ./...

echo "--- gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

echo "--- fuzz targets (${FUZZTIME:=10s} each)"
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" > /tmp/fuzz.$$.log 2>&1 || { cat /tmp/fuzz.$$.log; exit 1; }
		echo "ok   $pkg $target"
	done
done

echo "--- go test -race ./..."
go test -race -count=1 -timeout 25m ./...
