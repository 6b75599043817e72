package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcHeadroom is how much memory a run allocates before its first
// collection. A run is short and keeps most of what it allocates (file
// lists, compose's model, digests): collecting at 4, 8, 16 and 32 MB of
// heap, as the default does, costs a quarter of the CPU of a 200-service
// hash and frees little.
const gcHeadroom = 64 << 20

// tuneGC lets the heap grow to gcHeadroom before the first collection,
// then collects as usual from the first one whose live heap is over half
// of it, so that a large run never collects over and over at the limit.
// GOGC or GOMEMLIMIT set in the environment are the user's choice and
// left alone.
func tuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(gcHeadroom)
	watchHeap()
}

// watchHeap checks the live heap after each collection, until it is
// large enough to go back to the runtime's defaults.
func watchHeap() {
	runtime.AddCleanup(&sentinel{}, func(struct{}) {
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(live)
		if live[0].Value.Kind() == metrics.KindUint64 && live[0].Value.Uint64() < gcHeadroom/2 {
			watchHeap()
			return
		}
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	}, struct{}{})
}

// sentinel is what watchHeap leaves for the next collection to find; it
// holds a pointer, so that the runtime does not pack it with other small
// objects (which would keep it alive as long as they are).
type sentinel struct{ _ *byte }
