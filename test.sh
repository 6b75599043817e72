#!/usr/bin/env bash
# The whole test suite: formatting, vet, unit and e2e tests with the race
# detector, and a short run of every fuzz target. `.ci/run` runs this.
# As root it installs runc, busybox-static, openssh-server and docker.io
# when missing; the e2e tests need them (and root) and skip, saying so, without
# them.
set -euo pipefail
cd "$(dirname "$0")"

.ci/deps --test

echo "--- go mod download, tools"
go mod download
go build -o /dev/null ./...
# buildkitd's packages, compiled once for the e2e sandbox and for
# solver/daemon's build of the private daemon, which pins the same versions.
go build -o /dev/null github.com/moby/buildkit/cmd/buildkitd

echo "--- no build outputs tracked"
# A binary or a large file in the tree slows every clone and goes stale
# with every commit: refuse ELF files, and files over 1 MB outside testdata/.
if git rev-parse --git-dir >/dev/null 2>&1; then
	outputs=$(git ls-files -z | while IFS= read -r -d '' f; do
		[ -f "$f" ] || continue
		if [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then
			echo "$f (an ELF binary)"
		elif [ "$(wc -c < "$f")" -gt 1048576 ] && [[ "$f" != *testdata/* ]]; then
			echo "$f (over 1 MB)"
		fi
	done)
	if [ -n "$outputs" ]; then
		echo "tracked build outputs: $outputs; git rm --cached them and add them to .gitignore" >&2
		exit 1
	fi
fi

echo "--- gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...

echo "--- release: every platform, twice, byte for byte (.ci/release)"
# The archives for linux, darwin (Docker Desktop's macOS) and windows:
# this also proves the binary builds on every desktop platform.
rel=$(mktemp -d)
trap 'rm -rf "$rel"' EXIT
go vet ./.ci/releasetool
go test -count=1 ./.ci/releasetool
OUT=$rel/a .ci/release v0.0.0-ci
OUT=$rel/b .ci/release v0.0.0-ci
export BKCACHE_RELEASE_DIR=$rel/a # e2e's TestReleaseImage takes its image from it
diff -r "$rel/a" "$rel/b" >/dev/null || { echo "two release runs from one commit differ:" >&2; diff -r "$rel/a" "$rel/b" >&2 || true; exit 1; }
(cd "$rel/a" && sha256sum --quiet -c SHA256SUMS)
[ "$(ls "$rel/a" | grep -cE '^bkcache_v0\.0\.0-ci_(linux_(amd64|arm64)|darwin_(amd64|arm64))\.tar\.gz$|^bkcache_v0\.0\.0-ci_windows_amd64\.zip$')" = 5 ] || { echo "release: archives missing: $(ls "$rel/a")" >&2; exit 1; }
mkdir "$rel/x" && tar -xzf "$rel/a/bkcache_v0.0.0-ci_linux_amd64.tar.gz" -C "$rel/x"
v=$("$rel/x/bkcache" version --format json)
grep -q '"version": "v0.0.0-ci"' <<<"$v" || { echo "release: the linux/amd64 binary does not print its version: $v" >&2; exit 1; }
m=$("$rel/x/bkcache" docker-cli-plugin-metadata)
grep -q '"SchemaVersion": "0.1.0"' <<<"$m" && grep -q '"Version": "v0.0.0-ci"' <<<"$m" || { echo "release: plugin metadata: $m" >&2; exit 1; }

# Fuzz budgets are execution counts, not durations: with a duration, Go
# 1.26's fuzz coordinator can report "context deadline exceeded" at the
# deadline on a loaded machine (golang/go#75804, fixed in Go 1.27), and a
# count also does the same work on fast and slow machines. Each target's
# corpus is kept in its package's testdata/fuzz and replayed by go test. Each budget is
# about ten seconds on the 2-core CI machine; FUZZ_SCALE multiplies them.
declare -A fuzz_execs=(
	[source/FuzzIgnore]=8000
	[canon/FuzzRoundTrip]=600000
	[canon/FuzzDecode]=400000
	[dockerfile/FuzzAnalyze]=40000
	[tree/FuzzDigestInjective]=15000
	[tree/FuzzBlake3]=150000
	[tree/FuzzContentDigest]=200000
	[statcache/FuzzDecode]=200000
	[compose/FuzzParseCacheEntry]=8000
	[solver/FuzzParseOutput]=15000
	[plan/FuzzRefs]=40000
	[inputs/FuzzNormalize]=40000
	[inputs/FuzzShared]=2500
	[compose/FuzzAttestations]=100000
	[report/FuzzJUnit]=15000
	[prune/FuzzECRPolicy]=30000
	[record/FuzzLineDiff]=50000
	[inputs/FuzzFileJSON]=100000
	[bkcache/FuzzEscapeTerminal]=30000
	[cachekey/FuzzMatches]=100000
	[imageref/FuzzAgreesWithBuildKit]=100000
)
echo "--- fuzz targets (execution budgets x${FUZZ_SCALE:=1})"
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		n=${fuzz_execs[${pkg##*/}/$target]:-}
		if [ -z "$n" ]; then
			echo "test.sh: fuzz target $pkg $target has no budget: add ${pkg##*/}/$target to fuzz_execs" >&2
			exit 1
		fi
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$((n * FUZZ_SCALE))x" "$pkg" > /tmp/fuzz.$$.log 2>&1 || { cat /tmp/fuzz.$$.log; exit 1; }
		echo "ok   $pkg $target $((n * FUZZ_SCALE)) execs"
	done
done

echo "--- go test -race ./..."
go test -race -count=1 -timeout 25m ./...
