package source

import (
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// BreakRingsAfter makes every batch reader's ring fail from the batch
// after the first n of the whole test (as a ring the kernel gave up on
// would: io_uring_enter fails with EBADF), so that tests outside the
// package see what their callers do then.
func BreakRingsAfter(t *testing.T, n int64) {
	var batches atomic.Int64
	testHookSubmit = func(s *smallReader) {
		if batches.Add(1) > n && s.ring.fd >= 0 {
			unix.Close(s.ring.fd)
			s.ring.fd = -1
		}
	}
	t.Cleanup(func() { testHookSubmit = nil })
}
