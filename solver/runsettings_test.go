package solver

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/solver/plan"
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

// TestSettingsNoCacheAndEntitlements: no_cache runs every step again and
// wins over no_cache_filter, which names the stages to run again; the
// build's entitlements reach BuildKit each once, network: host's too.
func TestSettingsNoCacheAndEntitlements(t *testing.T) {
	for _, tc := range []struct {
		name    string
		svc     compose.Service
		noCache bool
		want    string // the no-cache attribute; "-" for none
		allow   []string
	}{
		{"neither", compose.Service{}, false, "-", nil},
		{"no_cache", compose.Service{NoCacheFilter: []string{"deps"}}, true, "", nil},
		{"no_cache_filter", compose.Service{NoCacheFilter: []string{"deps", "build"}}, false, "deps,build", nil},
		{"entitlements with network: host", compose.Service{Entitlements: []string{"network.host", "security.insecure"}, Run: compose.Run{Network: compose.NetworkHost}}, false, "-",
			[]string{"network.host", "security.insecure"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			so := &client.SolveOpt{FrontendAttrs: map[string]string{}}
			settings(so, &plan.Job{Service: &tc.svc, NoCache: tc.noCache})
			got, set := so.FrontendAttrs["no-cache"]
			if !set {
				got = "-"
			}
			if got != tc.want || !slices.Equal(so.AllowedEntitlements, tc.allow) {
				t.Errorf("no-cache %q, entitlements %v; want %q, %v", got, so.AllowedEntitlements, tc.want, tc.allow)
			}
		})
	}
}
