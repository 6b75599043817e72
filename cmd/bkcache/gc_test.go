package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// gcSettings reads GOGC and the memory limit without changing them.
func gcSettings() (percent, limit uint64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// collectUntil collects until done reports true, at most 100 times
// (cleanups run on their own goroutine, after the collection).
func collectUntil(done func() bool) {
	for range 100 {
		if done() {
			return
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// TestTuneGC: collection waits for the headroom, and goes back to the
// runtime's defaults once the live heap is over half of it, so that a
// large run does not collect over and over at the limit.
func TestTuneGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	tuneGC()
	off := func() bool { p, l := gcSettings(); return p == math.MaxUint64 && l == gcHeadroom }
	if p, l := gcSettings(); !off() {
		t.Fatalf("after tuneGC: GOGC %d, limit %d; want off and %d", p, l, gcHeadroom)
	}
	for range 5 {
		runtime.GC() // a small live heap: still tuned
		time.Sleep(time.Millisecond)
	}
	if p, l := gcSettings(); !off() {
		t.Fatalf("after collecting a small heap: GOGC %d, limit %d; want still off", p, l)
	}
	live := make([][]byte, 0, 48)
	for range cap(live) {
		live = append(live, make([]byte, 1<<20))
	}
	collectUntil(func() bool { p, _ := gcSettings(); return p == 100 })
	runtime.KeepAlive(live)
	if p, l := gcSettings(); p != 100 || l != math.MaxInt64 {
		t.Fatalf("with 48 MB live: GOGC %d, limit %d; want the defaults", p, l)
	}
}

// TestTuneGCLeavesTheUsersChoice: GOGC or GOMEMLIMIT set, nothing moves.
func TestTuneGCLeavesTheUsersChoice(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("GOGC", "")
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv(env, "123")
			defer debug.SetGCPercent(debug.SetGCPercent(100))
			tuneGC()
			if p, _ := gcSettings(); p != 100 {
				t.Fatalf("%s set: GOGC moved to %d", env, p)
			}
		})
	}
}
