//go:build !linux

package source

import "testing"

// BreakRingsAfter does nothing: there are no batch readers here.
func BreakRingsAfter(*testing.T, int64) {}
