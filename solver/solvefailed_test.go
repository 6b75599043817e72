package solver

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan/plantest"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestSolveFailedSays: a failed solve ends the service with what the
// user can act on: cancelled when the run was, a lost connection to
// buildkitd named so, a registry's size limit with the way around it,
// and otherwise the error with the Dockerfile line it points at.
func TestSolveFailedSays(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	atLine3 := errdefs.WithSource(errors.New("process did not complete"), &errdefs.Source{
		Info: &pb.SourceInfo{Filename: "Dockerfile"}, Ranges: []*pb.Range{{Start: &pb.Position{Line: 3}}}})
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		err      error
		status   outcome.Status
		want     string
		wantLine int
	}{
		{"cancelled", cancelled, errors.New("solve stopped"), outcome.Cancelled, "cancelled: context canceled", 0},
		{"connection lost", context.Background(), status.Error(codes.Unavailable, "transport is closing"), outcome.Failed, "the connection to buildkitd was lost", 0},
		{"a manifest too large", context.Background(), errors.New("unexpected status: 413 Request Entity Too Large"), outcome.Failed, "registries cap a manifest's size", 0},
		{"a step failed", context.Background(), atLine3, outcome.Failed, "building ", 3},
		{"an entitlement refused", context.Background(), errors.New("failed to solve: granting entitlement security.insecure is not allowed by build daemon configuration"), outcome.Failed, "--allow-insecure-entitlement", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := plantest.Job(t, "127.0.0.1:1/p/app", testHash, &compose.Service{Name: "s", Dockerfile: "/src/Dockerfile"})
			res := &outcome.Result{Service: "s"}
			NewBuilder(nil, nil, Options{}).solveFailed(tc.ctx, j, tc.err, res)
			if res.Status != tc.status || !strings.Contains(res.Error, tc.want) {
				t.Errorf("status %s, error %q; want %s with %q", res.Status, res.Error, tc.status, tc.want)
			}
			if line := 0; res.ErrorAt != nil || tc.wantLine != 0 {
				if res.ErrorAt != nil {
					line = res.ErrorAt.Line
				}
				if line != tc.wantLine || (res.ErrorAt != nil && res.ErrorAt.File != "/src/Dockerfile") {
					t.Errorf("error at %+v, want line %d of /src/Dockerfile", res.ErrorAt, tc.wantLine)
				}
			}
		})
	}
}
