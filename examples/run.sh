#!/usr/bin/env bash
# Runs bkcache's main job on this example project against a stack it
# brings up itself: the pinned buildkitd (with runc) and a local registry,
# with an offline busybox image. Builds twice: the second run skips.
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/deps
exec go run ./e2e/cmd/stack -- bash -c '
set -euo pipefail
cd examples
echo
echo "=== first run: every service is built, pushed, and :ci moved"
"$BKCACHE" build --push --progress plain 2>build.log || { cat build.log; exit 1; }
echo
echo "=== second run: nothing changed, every service is skipped"
"$BKCACHE" build --push --progress quiet
echo
echo "=== the image refs a test job would pull"
"$BKCACHE" hash --format env
rm -f build.log
'
