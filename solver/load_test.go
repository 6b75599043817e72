package solver

import (
	"strings"
	"testing"
)

func TestPickPlatform(t *testing.T) {
	for _, tc := range []struct {
		svc        []string
		want, got  string
		errMention string
	}{
		{svc: []string{"linux/arm64", "linux/amd64"}, want: "linux/amd64", got: "linux/amd64"},
		{svc: []string{"linux/arm64/v8", "linux/amd64"}, want: "linux/arm64", got: "linux/arm64/v8"},
		{svc: []string{"linux/arm/v7", "linux/arm64"}, want: "linux/arm64", got: "linux/arm64"},
		// An amd64 engine runs 386 images, but a 386 image is not its own.
		{svc: []string{"linux/386", "linux/arm64"}, want: "linux/amd64", errMention: "not for linux/amd64"},
		{svc: []string{"windows/amd64", "linux/arm64"}, want: "linux/amd64", errMention: "add linux/amd64 to its platforms"},
		{svc: []string{"linux/amd64"}, want: "not a/platform/at/all", errMention: "the Docker engine's platform"},
	} {
		got, err := pickPlatform(tc.svc, tc.want)
		if tc.errMention != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errMention) {
				t.Errorf("pickPlatform(%v, %s) = %q, %v; want an error saying %q", tc.svc, tc.want, got, err, tc.errMention)
			}
			continue
		}
		if err != nil || got != tc.got {
			t.Errorf("pickPlatform(%v, %s) = %q, %v; want %q", tc.svc, tc.want, got, err, tc.got)
		}
	}
}
