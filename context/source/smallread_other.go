//go:build !linux

package source

type smallReader struct{}

func newSmallReader(*dirFS) *smallReader { return nil }

// Add queues the file at path, expected to be size bytes, for the next
// Read; it reports false when it queued nothing.
func (*smallReader) Add(string, int64) bool { return false }

// Len returns the number of files queued.
func (*smallReader) Len() int { return 0 }

// Read reads the queued files and empties the queue.
func (*smallReader) Read() []SmallFile { return nil }

// Close releases the reader.
func (*smallReader) Close() {}
