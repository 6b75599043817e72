package solver

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/moby/buildkit/client"
)

// TestRunSettings: the keys of every RUN step reach the frontend as the
// attributes dockerui parses, in the service's order, and only network:
// host asks for an entitlement.
func TestRunSettings(t *testing.T) {
	hosts := []compose.Host{{Name: "a", IP: netip.MustParseAddr("10.0.0.1")}, {Name: "b", IP: netip.MustParseAddr("::1")}}
	for _, tc := range []struct {
		name  string
		run   compose.Run
		attrs map[string]string
		allow []string
	}{
		{"defaults", compose.Run{}, map[string]string{}, nil},
		{"host network", compose.Run{Network: compose.NetworkHost}, map[string]string{"force-network-mode": "host"}, []string{"network.host"}},
		{"no network", compose.Run{Network: compose.NetworkNone}, map[string]string{"force-network-mode": "none"}, nil},
		{"extra hosts", compose.Run{ExtraHosts: hosts}, map[string]string{"add-hosts": "a=10.0.0.1,b=::1"}, nil},
		{"shm size", compose.Run{ShmSize: 64 << 20}, map[string]string{"shm-size": "67108864"}, nil},
		{"ulimits", compose.Run{Ulimits: []compose.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 10, Hard: 10}}},
			map[string]string{"ulimit": "nofile=1024:2048,nproc=10:10"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			so := &client.SolveOpt{FrontendAttrs: map[string]string{}}
			runSettings(so, tc.run)
			if !maps.Equal(so.FrontendAttrs, tc.attrs) {
				t.Errorf("attrs = %v, want %v", so.FrontendAttrs, tc.attrs)
			}
			var allow []string
			for _, e := range so.AllowedEntitlements {
				allow = append(allow, string(e))
			}
			if !slices.Equal(allow, tc.allow) {
				t.Errorf("entitlements = %v, want %v", allow, tc.allow)
			}
		})
	}
}
