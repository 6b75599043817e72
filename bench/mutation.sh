#!/usr/bin/env bash
# Mutation testing: go-gremlins (a Go tool dependency, pinned in go.mod)
# plants small bugs, one at a time, in the packages where a bug means a
# stale image or a lying registry, runs that package's tests against each,
# and counts the bugs the tests catch. Prints the score per package and
# the mutants that lived, and writes both into docs/testing.md between
# its "mutation results" markers (the explanations of survivors there are
# written by hand, outside the markers).
#
#   bench/mutation.sh              # every package below, about 25 minutes on 2 cores
#   bench/mutation.sh hash/canon   # one package
#
# Not part of .ci/run: it runs each package's tests once per mutant.
set -euo pipefail
cd "$(dirname "$0")/.."

# Packages, and for the solver only the check and publish hand-over.
pkgs=(hash/canon hash/tree hash/dockerfile hash/inputs hash/statcache solver/record
	context/compose context/source solver/plan solver/registry solver/publish solver)
[ $# -gt 0 ] && pkgs=("$@")
# gremlins matches these against paths relative to the package, its
# subpackages included. Everywhere: code that does not build here. In the
# solver: all but a service's check and its hand-over to publish
# (service.go, finish.go), its subpackages run on their own (publishing
# is solver/publish's, whole). In solver/registry: all
# but the skip check's HEAD (registry.go). In context/source: the test
# helpers of sourcetest.
skip_all='_(other|windows)\.go$'
solver_skip='^(addr|attempt|build|connect|contexts|load|nodes|output|pin|progress|schedule|solveopt)\.go$|/'
registry_skip='^(attach|cacheinspect|transport)\.go$|^registrytest/'
source_skip='^sourcetest/'

# Per-package logs and JSON stay for reading afterwards.
out=${MUTATION_OUT:-$(mktemp -d -t bkcache-mutation.XXXXXX)}
mkdir -p "$out"
echo "results in $out"
# gremlins times each mutant out at the coefficient times its first,
# covered run of the package's tests; a cached result would make that a
# few milliseconds and every mutant a time-out.
export GOFLAGS="${GOFLAGS:-} -count=1"
# As in CI, a test whose requirement is missing (io_uring, root) fails
# instead of skipping: a mutant that disables the batch reader then dies.
export CI=true
start=$(date +%s)
for p in "${pkgs[@]}"; do
	args=(--workers 2 --timeout-coefficient 20 -o "$out/${p//\//_}.json" -E "$skip_all")
	[ "$p" = solver ] && args+=(-E "$solver_skip")
	[ "$p" = solver/registry ] && args+=(-E "$registry_skip")
	[ "$p" = context/source ] && args+=(-E "$source_skip")
	echo "--- $p"
	go tool gremlins unleash "${args[@]}" "./$p" > "$out/${p//\//_}.log" 2>&1 || {
		cat "$out/${p//\//_}.log" >&2
		exit 1
	}
	grep -E 'Killed:|Timed out:|Test efficacy' "$out/${p//\//_}.log"
done
minutes=$(( ($(date +%s) - start + 59) / 60 ))

results=()
for p in "${pkgs[@]}"; do results+=("$p=$out/${p//\//_}.json"); done
go run ./bench/mutation -minutes "$minutes" -commit "$(git rev-parse --short HEAD)" -w docs/testing.md "${results[@]}"
echo "wrote docs/testing.md"
