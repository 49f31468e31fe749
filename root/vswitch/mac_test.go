package vswitch

import (
	"errors"
	"strings"
	"testing"
)

func TestMACStringAndParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want MAC
	}{
		{"00:15:5d:00:00:01", MAC{0x00, 0x15, 0x5d, 0x00, 0x00, 0x01}},
		{"00-15-5D-0A-BC-FF", MAC{0x00, 0x15, 0x5d, 0x0a, 0xbc, 0xff}},
		{"ff:ff:ff:ff:ff:ff", Broadcast},
	} {
		got, err := ParseMAC(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseMAC(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if s := got.String(); s != strings.ToLower(strings.ReplaceAll(tc.in, "-", ":")) {
			t.Errorf("String() = %q", s)
		}
	}
	for _, bad := range []string{"", "00:15:5d:00:00", "00:15:5d:00:00:01:02", "00:15-5d:00:00:01", "00.15.5d.00.00.01", "0g:15:5d:00:00:01", "00:15:5d:00:00:1 "} {
		if _, err := ParseMAC(bad); !errors.Is(err, ErrBadMAC) {
			t.Errorf("ParseMAC(%q): err %v, want ErrBadMAC", bad, err)
		}
	}
}

func TestMACGroupBit(t *testing.T) {
	for _, tc := range []struct {
		m         MAC
		multicast bool
	}{
		{MAC{0x00, 0x15, 0x5d, 0, 0, 1}, false},
		{MAC{0x02, 0, 0, 0, 0, 1}, false}, // locally administered, individual
		{MAC{0x01, 0x00, 0x5e, 0, 0, 1}, true},
		{MAC{0x33, 0x33, 0, 0, 0, 1}, true},
		{Broadcast, true},
	} {
		if got := tc.m.IsMulticast(); got != tc.multicast {
			t.Errorf("%v.IsMulticast() = %v", tc.m, got)
		}
	}
	if !Broadcast.IsBroadcast() || (MAC{0x01}).IsBroadcast() {
		t.Error("IsBroadcast")
	}
}

// FuzzParseMAC: ParseMAC never panics, and what it accepts prints back to
// the same address.
func FuzzParseMAC(f *testing.F) {
	f.Add("00:15:5d:00:00:01")
	f.Add("00-15-5D-00-00-01")
	f.Add("zz:15:5d:00:00:01")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMAC(s)
		if err != nil {
			return
		}
		back, err := ParseMAC(m.String())
		if err != nil || back != m {
			t.Fatalf("%q → %v → %q → %v, %v", s, m, m.String(), back, err)
		}
	})
}
