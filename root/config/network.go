package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Default MAC addresses, for the NICs and switch root ports the file gives
// none. They start with 00:15:5d, Microsoft's OUI, as the addresses
// Hyper-V hands out itself do, and end in three bytes gohv derives from the
// position in the file: a partition's default MACs change when partitions
// before it are added or removed (set mac to keep one).

// DefaultNICMAC is the MAC address of partition's NIC number nic (both
// counted from 0) when the file gives none: 00:15:5d, the partition as two
// bytes (big-endian), the NIC as one. partition[1].nic[0] is
// 00:15:5d:00:01:00. The defaults are distinct for partitions below 0xffff
// and NICs below 256, and none is a DefaultRootMAC.
func DefaultNICMAC(partition, nic int) string {
	return fmt.Sprintf("00:15:5d:%02x:%02x:%02x", partition>>8&0xff, partition&0xff, nic&0xff)
}

// DefaultRootMAC is the MAC address of switch number sw's root port (from
// 0) when the file gives none: 00:15:5d:ff:ff, then sw as one byte. The
// defaults are distinct for the first 256 switches, and no DefaultNICMAC of
// a partition below 0xffff is one.
func DefaultRootMAC(sw int) string {
	return fmt.Sprintf("00:15:5d:ff:ff:%02x", sw&0xff)
}

// CheckSwitchName reports what is wrong with a switch name, or nil:
// switches are named as partitions are.
func CheckSwitchName(s string) error {
	return checkWord(s, "switch name", MaxNameLen)
}

// macRule is how errors say what a MAC address looks like.
const macRule = `a MAC address is six two-digit hex bytes separated by colons, such as "00:15:5d:00:01:00"`

// checkMAC returns the MAC address s in lower case, or what is wrong with
// it; key is the key that set it ("mac", "root_mac"), which the file can
// leave out for gohv's default.
func checkMAC(s, key string) (string, string) {
	var a [6]byte
	ok := len(s) == 17
	for i := 0; ok && i < 6; i++ {
		hi, okh := unhex(s[3*i])
		lo, okl := unhex(s[3*i+1])
		ok = okh && okl && (i == 5 || s[3*i+2] == ':')
		a[i] = hi<<4 | lo
	}
	switch {
	case !ok:
		return "", fmt.Sprintf("%q; %s", s, macRule)
	case a == [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}:
		return "", fmt.Sprintf("%q: the broadcast address; want a unicast address (an even first byte), or leave %s out for gohv's default", s, key)
	case a[0]&1 != 0:
		return "", fmt.Sprintf("%q: a multicast address (an odd first byte); want a unicast address (an even first byte), or leave %s out for gohv's default", s, key)
	case a == [6]byte{}:
		return "", fmt.Sprintf("%q: all zeros; want a unicast address other than zero, or leave %s out for gohv's default", s, key)
	}
	return strings.ToLower(s), ""
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// checkRootAddress says what is wrong with a switch's root_address, or "".
func checkRootAddress(s string) string {
	const want = `want the root's IPv4 address and its network's prefix length, such as "10.0.0.1/24"`
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q; %s", s, want)
	case !p.Addr().Is4():
		return fmt.Sprintf("%q: not an IPv4 address; %s", s, want)
	case p.Bits() < 1 || p.Bits() > 30:
		return fmt.Sprintf("%q: a /%d prefix; want a prefix length of 1 to 30 (a network with room for the root and its guests)", s, p.Bits())
	}
	addr, network := p.Addr(), p.Masked()
	b := addr.As4()
	host := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	mask := ^uint32(0) >> p.Bits() // the host part
	first := netip.PrefixFrom(network.Addr().Next(), p.Bits())
	switch {
	case host&mask == 0:
		return fmt.Sprintf("%q: the network address of %s; want a host address in it, such as %q", s, network, first)
	case host&mask == mask:
		return fmt.Sprintf("%q: the broadcast address of %s; want a host address in it, such as %q", s, network, first)
	case addr.IsLoopback():
		return fmt.Sprintf("%q: a loopback address; want an address the switch's guests can reach, such as \"10.0.0.1/24\"", s)
	case addr.IsMulticast():
		return fmt.Sprintf("%q: a multicast address; want a unicast address, such as \"10.0.0.1/24\"", s)
	}
	return ""
}

// validateSwitches checks the switches, putting their root MACs in lower
// case.
func (c *Config) validateSwitches() Errors {
	var errs Errors
	bad := func(k int, key, format string, args ...any) {
		errs = append(errs, c.errorf(switchPath(k, key), format, args...))
	}
	names := map[string]int{}
	for k, s := range c.Switches {
		switch err := CheckSwitchName(s.Name); {
		case s.Name == "":
			bad(k, "name", "missing; every switch needs a name")
		case err != nil:
			bad(k, "name", "%v", err)
		default:
			if o, dup := names[s.Name]; dup {
				bad(k, "name", "%q is also switch[%d]'s name; names must be unique", s.Name, o)
			} else {
				names[s.Name] = k
			}
		}
		if s.RootAddress != "" {
			if msg := checkRootAddress(s.RootAddress); msg != "" {
				bad(k, "root_address", "%s", msg)
			}
		}
		if mac, msg := checkMAC(s.RootMAC, "root_mac"); msg != "" {
			bad(k, "root_mac", "%s", msg)
		} else {
			c.Switches[k].RootMAC = mac
		}
	}
	return errs
}

// switchNames lists the switches' names, each once, in the order of the
// file: the names NICs may connect to. A switch whose name is wrong is
// reported once, as a switch, not again by every NIC naming it.
func (c *Config) switchNames() (names []string, has map[string]bool) {
	has = map[string]bool{}
	for _, s := range c.Switches {
		if s.Name != "" && !has[s.Name] {
			has[s.Name] = true
			names = append(names, s.Name)
		}
	}
	return names, has
}

// validateNICs checks partition i's NICs, putting their MACs in lower case;
// switches and has are switchNames' results.
func (c *Config) validateNICs(i int, switches []string, has map[string]bool) Errors {
	var errs Errors
	bad := func(j int, key, format string, args ...any) {
		errs = append(errs, c.errorf(nicPath(i, j, key), format, args...))
	}
	nics := c.Partitions[i].NICs
	for j, n := range nics {
		if j == MaxNICs {
			bad(j, "", "%d NICs; a partition has at most %d", len(nics), MaxNICs)
		}
		switch {
		case n.Switch == "" && len(switches) == 0:
			bad(j, "switch", "missing; name the switch the NIC connects to (the file has none: add a [[switch]] table)")
		case n.Switch == "":
			bad(j, "switch", "missing; name the switch the NIC connects to: %s", strings.Join(switches, ", "))
		case len(switches) == 0:
			bad(j, "switch", "%q: no such switch; the file has none: add a [[switch]] table with name = %q", n.Switch, n.Switch)
		case !has[n.Switch]:
			bad(j, "switch", "%q: no such switch; the file's switches are %s", n.Switch, strings.Join(switches, ", "))
		}
		if mac, msg := checkMAC(n.MAC, "mac"); msg != "" {
			bad(j, "mac", "%s", msg)
		} else {
			c.Partitions[i].NICs[j].MAC = mac
		}
	}
	return errs
}

// validateMACs reports every MAC address, root port's or NIC's, the file
// wrote or gohv chose, that an earlier line already uses. Run it after
// validateSwitches and validateNICs: it compares the valid addresses they
// left in lower case.
func (c *Config) validateMACs() Errors {
	type user struct {
		path, key string // "switch[0].root_mac", "root_mac"
		mac       string
		line      int
		dflt      bool
	}
	var users []user
	add := func(path, key, mac string) {
		if _, msg := checkMAC(mac, key); msg != "" {
			return // reported already
		}
		_, set := c.lines[path]
		users = append(users, user{path, key, mac, c.line(path), !set})
	}
	for k, s := range c.Switches {
		add(switchPath(k, "root_mac"), "root_mac", s.RootMAC)
	}
	for i, p := range c.Partitions {
		for j, n := range p.NICs {
			add(nicPath(i, j, "mac"), "mac", n.MAC)
		}
	}
	slices.SortStableFunc(users, func(a, b user) int { return a.line - b.line })
	var errs Errors
	first := map[string]user{}
	for _, u := range users {
		o, dup := first[u.mac]
		if !dup {
			first[u.mac] = u
			continue
		}
		other := o.path
		if o.dflt {
			other += " (its default)"
		}
		if u.dflt {
			errs = append(errs, c.errorf(u.path, "%s, the default, is also %s; MAC addresses must be unique in the file (set %s to another)", u.mac, other, u.key))
		} else {
			errs = append(errs, c.errorf(u.path, "%s is also %s; MAC addresses must be unique in the file", u.mac, other))
		}
	}
	return errs
}
