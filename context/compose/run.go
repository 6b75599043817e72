package compose

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	units "github.com/docker/go-units"
	"github.com/moby/buildkit/util/entitlements"
)

// Run holds the build keys BuildKit applies to every RUN step: each is
// part of the step's exec op, so of its cache key. They are parsed and
// checked at load time, and kept in the order BuildKit is given them.
type Run struct {
	Network    Network
	ExtraHosts []Host   // sorted by name, then address
	ShmSize    int64    // /dev/shm's size in bytes; 0 leaves BuildKit's default
	Ulimits    []Ulimit // sorted by name
}

// Network is a RUN step's network: BuildKit's force-network-mode.
type Network string

// The networks BuildKit runs a step in. compose's "default" (and no
// network at all) leave BuildKit's own, its sandbox.
const (
	NetworkDefault Network = ""
	NetworkHost    Network = "host"
	NetworkNone    Network = "none"
)

// Host is one build.extra_hosts entry: a name for /etc/hosts and its
// address. BuildKit lowercases the name.
type Host struct {
	Name string
	IP   netip.Addr
}

// String is the entry as BuildKit's add-hosts takes it.
func (h Host) String() string { return h.Name + "=" + h.IP.String() }

// Ulimit is one build.ulimits entry.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// String is the entry as BuildKit's ulimit option (and docker's --ulimit)
// takes it.
func (u Ulimit) String() string {
	return u.Name + "=" + strconv.FormatInt(u.Soft, 10) + ":" + strconv.FormatInt(u.Hard, 10)
}

// HostsAttr is the extra hosts as BuildKit's add-hosts option takes them.
func (r Run) HostsAttr() string { return join(r.ExtraHosts) }

// UlimitsAttr is the ulimits as BuildKit's ulimit option takes them.
func (r Run) UlimitsAttr() string { return join(r.Ulimits) }

func join[T fmt.Stringer](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, ",")
}

// runOf parses the build keys that apply to RUN steps.
func runOf(b *types.BuildConfig) (Run, error) {
	r := Run{ShmSize: int64(b.ShmSize)}
	var err error
	if r.Network, err = parseNetwork(b.Network); err != nil {
		return Run{}, err
	}
	if r.ExtraHosts, err = parseHosts(b.ExtraHosts); err != nil {
		return Run{}, err
	}
	if r.Ulimits, err = parseUlimits(b.Ulimits); err != nil {
		return Run{}, err
	}
	if r.ShmSize < 0 {
		return Run{}, fmt.Errorf("build.shm_size %d is negative: give a size such as 64m", r.ShmSize)
	}
	return r, nil
}

func parseNetwork(s string) (Network, error) {
	switch s {
	case "", "default":
		return NetworkDefault, nil
	case "host", "none":
		return Network(s), nil
	}
	return "", fmt.Errorf("build.network %q is not supported by BuildKit (use default, host or none)", s)
}

// parseHosts reads build.extra_hosts as BuildKit will: names lowercased,
// each address an IP. compose-go keeps them in a map; the result is
// sorted, so that BuildKit gets them, and keys its steps on them, in the
// same order on every run.
func parseHosts(hl types.HostsList) ([]Host, error) {
	var out []Host
	for name, addrs := range hl {
		for _, a := range addrs {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return nil, fmt.Errorf("build.extra_hosts: %s=%s: not an IP address, which is all BuildKit takes here (host-gateway is known to a Docker engine only)", name, a)
			}
			out = append(out, Host{Name: strings.ToLower(name), IP: ip})
		}
	}
	slices.SortFunc(out, func(a, b Host) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), a.IP.Compare(b.IP))
	})
	return slices.Compact(out), nil
}

// parseUlimits reads build.ulimits, checking each as docker's --ulimit
// does: a known name, soft at most hard. A single value sets both.
func parseUlimits(m map[string]*types.UlimitsConfig) ([]Ulimit, error) {
	var out []Ulimit
	for _, name := range slices.Sorted(maps.Keys(m)) {
		c := m[name]
		if c == nil {
			continue
		}
		soft, hard := c.Soft, c.Hard
		if c.Single != 0 {
			soft, hard = c.Single, c.Single
		}
		u := Ulimit{Name: name, Soft: int64(soft), Hard: int64(hard)}
		if _, err := units.ParseUlimit(u.String()); err != nil {
			return nil, fmt.Errorf("build.ulimits: %s: %w (names as docker run --ulimit takes them, such as nofile or nproc; soft at most hard)", name, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// entitlementsOf checks build.entitlements, as BuildKit names them, and
// adds security.insecure for privileged, as buildx does; sorted, each
// once.
func entitlementsOf(b *types.BuildConfig) ([]string, error) {
	var out []string
	for _, e := range b.Entitlements {
		if _, _, err := entitlements.Parse(e); err != nil {
			return nil, fmt.Errorf("build.entitlements: %w (BuildKit knows network.host, security.insecure and device)", err)
		}
		out = append(out, e)
	}
	if b.Privileged {
		out = append(out, string(entitlements.EntitlementSecurityInsecure))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
