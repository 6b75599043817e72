package solver

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func nodes(addrs ...string) []*Node {
	var out []*Node
	for _, a := range addrs {
		out = append(out, &Node{Addr: a})
	}
	return out
}

// TestRendezvousOrder: services spread over the nodes, keep their node
// from run to run whatever order the nodes are given in, and losing a
// node moves only the services that were on it.
func TestRendezvousOrder(t *testing.T) {
	three := nodes("tcp://a:1234", "tcp://b:1234", "tcp://c:1234")
	reversed := []*Node{three[2], three[1], three[0]}
	count := map[string]int{}
	for i := range 300 {
		svc := fmt.Sprintf("service-%d", i)
		first := order(three, svc)[0].Addr
		count[first]++
		if got := order(reversed, svc)[0].Addr; got != first {
			t.Fatalf("%s: %s or %s depending on the flag order", svc, first, got)
		}
		without := order(three[:2], svc)[0].Addr
		if first != "tcp://c:1234" && without != first {
			t.Fatalf("%s moved from %s to %s when c left", svc, first, without)
		}
		if first == "tcp://c:1234" && without != order(three, svc)[1].Addr {
			t.Fatalf("%s did not move to its second choice when c left", svc)
		}
	}
	for _, n := range three {
		if count[n.Addr] < 70 {
			t.Errorf("uneven spread over the nodes: %v", count)
		}
	}
}

func TestNodeFailure(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{status.Error(codes.Unavailable, "connection error: dial unix /run/x.sock: connect: connection refused"), true},
		{fmt.Errorf("failed to receive status: %w", status.Error(codes.Unavailable, "error reading from server: EOF")), true},
		{status.Error(codes.Unknown, `process "/bin/sh -c exit 3" did not complete successfully: exit code: 3`), false},
		{errors.New("failed to push: unknown: injected fault 500"), false},
	} {
		if got := NodeFailure(tc.err); got != tc.want {
			t.Errorf("NodeFailure(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
