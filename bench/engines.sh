#!/usr/bin/env bash
# The same project on two engines, side by side in one run: the stack's
# buildkitd (BUILDKIT_HOST) and a current Docker engine's own BuildKit
# (moby v2's dockerd, containerd image store, pinned in
# e2e/engines/dockerd). Per engine, RUNS times, alternating: a cold
# --push (empty caches, a new repository), a no-op run, and a run after
# one service's input changed. Prints a markdown table of medians.
#
#   sudo bench/engines.sh           # RUNS=3
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/deps >&2
root=$PWD
exec go run ./e2e/cmd/stack -- bash -c '
set -euo pipefail
root='"$root"'
runs=${RUNS:-3}
work=$(mktemp -d /tmp/bkc-engines-XXXX)
trap "kill \$(cat $work/docker.pid 2>/dev/null) 2>/dev/null || true; sleep 2; rm -rf $work" EXIT
(cd "$root/e2e/engines/dockerd" && CGO_ENABLED=0 go build -tags "exclude_graphdriver_btrfs exclude_graphdriver_devicemapper exclude_disk_quota" -o "$work/dockerd" github.com/moby/moby/v2/cmd/dockerd)
"$work/dockerd" --data-root "$work/data" --exec-root "$work/exec" -H "unix://$work/docker.sock" --pidfile "$work/docker.pid" \
	--iptables=false --ip6tables=false --registry-mirror "http://$REGISTRY" > "$work/dockerd.log" 2>&1 &
for i in $(seq 100); do DOCKER_HOST="unix://$work/docker.sock" docker info >/dev/null 2>&1 && break; sleep 0.2; done
bk=$BKCACHE
buildkitd_host=$BUILDKIT_HOST
now() { date +%s.%N; }
# run ENGINE PROJECT: one bkcache build --push on ENGINE, its seconds.
run() {
	local t0; t0=$(now)
	if [ "$1" = buildkitd ]; then
		(cd "$2" && BUILDKIT_HOST=$buildkitd_host "$bk" build --push --progress quiet >/dev/null 2>>"$work/err.log")
	else
		(cd "$2" && BUILDKIT_HOST= DOCKER_HOST="unix://$work/docker.sock" "$bk" build --push --progress quiet >/dev/null 2>>"$work/err.log")
	fi
	echo "$(now) - $t0" | bc
}
prune() {
	if [ "$1" = buildkitd ]; then
		go -C "$root" tool buildctl --addr "$buildkitd_host" prune --all >/dev/null
	else
		export DOCKER_HOST="unix://$work/docker.sock"
		docker builder prune -af >/dev/null; docker image prune -af >/dev/null
		docker image rm -f $(docker image ls -q) >/dev/null 2>&1 || true
		unset DOCKER_HOST
	fi
}
for i in $(seq "$runs"); do
	for eng in buildkitd docker; do
		p="$work/$eng-$i"; cp -a "$root/examples" "$p"
		sed -i "s#\${REGISTRY:-127.0.0.1:5000}/example#$REGISTRY/$eng-$i#" "$p/compose.yaml"
		prune "$eng"
		echo "$eng cold $(run "$eng" "$p")" >> "$work/times"
		echo "$eng noop $(run "$eng" "$p")" >> "$work/times"
		echo "changed $i" >> "$p/web/static/index.html"
		echo "$eng change $(run "$eng" "$p")" >> "$work/times"
	done
done
median() { sort -n | awk "{a[NR]=\$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}"; }
engine_bk=$(BUILDKIT_HOST= DOCKER_HOST="unix://$work/docker.sock" "$bk" version | awk "/^buildkitd/ {print \$2}")
echo "| scenario | buildkitd (BUILDKIT_HOST) | Docker engine (moby v2 dockerd, BuildKit $engine_bk containerd store) | engine / buildkitd |"
echo "|---|---|---|---|"
for s in cold noop change; do
	a=$(awk -v s=$s "\$1==\"buildkitd\" && \$2==s {print \$3}" "$work/times" | median)
	b=$(awk -v s=$s "\$1==\"docker\" && \$2==s {print \$3}" "$work/times" | median)
	printf "| %s | %.2f s | %.2f s | %.2fx |\n" "$s" "$a" "$b" "$(echo "$b / $a" | bc -l)"
done
'
