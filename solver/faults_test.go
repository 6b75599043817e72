package solver

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/moby/buildkit/util/grpcerrors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New(`failed to push 127.0.0.1:5000/p/app:h: unexpected status from PUT request to http://127.0.0.1:5000/v2/p/app/manifests/h: 429 Too Many Requests`), true},
		{errors.New(`unexpected status from HEAD request to http://r/v2/x/blobs/sha256:1: 503 Service Unavailable`), true},
		{errors.New(`failed to copy: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer`), true},
		{errors.New(`failed commit on ref "layer-sha256:1": unexpected EOF`), true},
		{errors.New(`dial tcp 10.0.0.1:443: i/o timeout`), true},
		{errors.New(`failed to push r/x:h: toomanyrequests: You have reached your pull rate limit`), true},
		{errors.New(`failed to push r/x:h: unknown: unknown error`), true},
		{errors.New(`failed to push r/x:h: unavailable: service unavailable`), true},
		{errors.New(`failed to push r/x:h: denied: requested access to the resource is denied`), false},
		{errors.New(`failed to push r/x:h: manifest invalid: manifest invalid`), false},
		{errors.New(`unexpected status from PUT request to http://r/v2/x/manifests/h: 400 Bad Request`), false},
		{errors.New(`unexpected status from PUT request to http://r/v2/x/manifests/h: 401 Unauthorized`), false},
		{errors.New(`process "/bin/sh -c curl https://x || echo connection reset by peer" did not complete successfully: exit code: 1`), false},
		{fmt.Errorf("solve: %w", context.Canceled), false},
		{grpcerrors.WrapCode(status.Error(codes.Unavailable, "error reading from server: connection reset by peer"), codes.Unavailable), false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n <= 10; n++ {
		base := min(time.Second<<(n-1), 30*time.Second)
		if d := backoff(n); d < base || d > base+base/4 {
			t.Errorf("backoff(%d) = %v, want in [%v, %v]", n, d, base, base+base/4)
		}
	}
}
