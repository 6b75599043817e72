#!/usr/bin/env bash
# Compares `bkcache hash` with the shell pipelines it replaces, on one
# generated context (20,000 files, about 1.3 GB, COPY . .), page cache warm,
# all measured in this one run. Prints medians of RUNS runs and the ratios.
#
#   bench/hash.sh                 # default workload
#   FILES=2000 BYTES=130000000 RUNS=3 bench/hash.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-20000}
BYTES=${BYTES:-1363148800}
RUNS=${RUNS:-5}
WORK=${WORK:-$(mktemp -d /tmp/bkcache-bench.XXXXXX)}
trap 'rm -rf "$WORK"' EXIT

CGO_ENABLED=0 go build -o "$WORK/bkcache" ./cmd/bkcache # as the README installs it
go run ./bench/gen -dir "$WORK/project/ctx" -files "$FILES" -bytes "$BYTES" >&2
printf 'services:\n  app:\n    build: ./ctx\n' > "$WORK/project/compose.yaml"
printf 'FROM scratch\nCOPY . /app/\n' > "$WORK/project/ctx/Dockerfile"
CTX="$WORK/project/ctx"

# Warm the page cache so every contender reads from memory.
find "$CTX" -type f -print0 | xargs -0 cat > /dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
once() { # once CMD...: prints the wall time of one run in seconds
	local s e
	s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N)
	echo "$e - $s" | bc
}
timeit() { # timeit NAME CMD...: prints the median wall time in seconds
	local name=$1; shift
	for _ in $(seq "$RUNS"); do once "$@"; done | median
}

export XDG_CACHE_HOME="$WORK/cache"
# bkcache and the pipeline it is held against take turns, so that a
# slower spell of this VM weighs on both sides of the ratio alike.
bkrun() { "$WORK/bkcache" hash --no-stat-cache --project-directory "$WORK/project"; }
sharun() { find "$CTX" -type f -print0 | xargs -0 -P2 sha256sum; }
for _ in $(seq "$RUNS"); do
	echo "bk $(once bkrun)"
	echo "sha $(once sharun)"
done > "$WORK/times"
bk=$(awk '$1 == "bk" {print $2}' "$WORK/times" | median)
sha=$(awk '$1 == "sha" {print $2}' "$WORK/times" | median)
# Re-hashing the unchanged context with the stat cache: one run records
# every file (the context was written over two seconds ago by now), the
# timed runs read none.
"$WORK/bkcache" hash --project-directory "$WORK/project" > /dev/null
warm=$(timeit warm "$WORK/bkcache" hash --project-directory "$WORK/project")
md5=$(RUNS=1 timeit md5 bash -c "find '$CTX' -type f -exec md5sum {} \; | sort -k 2 | md5sum")
rss=$( { /usr/bin/time -f '%M' "$WORK/bkcache" hash --no-stat-cache --project-directory "$WORK/project" > /dev/null; } 2>&1 | tail -1)

printf '\nmachine: %s cores, %s\n' "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
printf 'workload: %s files, %s bytes, page cache warm, median of %s runs, bkcache and sha256sum alternating (md5: 1 run)\n\n' "$FILES" "$(du -sb "$CTX" | cut -f1)" "$RUNS"
printf '| contender | seconds | bkcache / contender |\n|---|---|---|\n'
printf '| bkcache hash (cold: --no-stat-cache) | %.3f | 1.00 |\n' "$bk"
printf '| bkcache hash, unchanged context, stat cache warm | %.3f | %.3f of cold |\n' "$warm" "$(echo "$warm / $bk" | bc -l)"
printf '| find \\| xargs -0 -P2 sha256sum | %.3f | %.3f |\n' "$sha" "$(echo "$bk / $sha" | bc -l)"
printf '| find -exec md5sum \\; \\| sort \\| md5sum | %.3f | %.4f |\n' "$md5" "$(echo "$bk / $md5" | bc -l)"
printf '\nbkcache peak RSS: %s KB\n' "$rss"
