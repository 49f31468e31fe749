package proto

import "testing"

// linux-guest-hyperv-facts.md §4.3.
func TestVersionEncodings(t *testing.T) {
	for _, c := range []struct {
		v    Version
		want uint32
		s    string
	}{
		{VersionWS2008, 0x0000000d, "0.13"},
		{VersionWin7, 0x00010001, "1.1"},
		{VersionWin8, 0x00020004, "2.4"},
		{VersionWin8_1, 0x00030000, "3.0"},
		{VersionWin10, 0x00040000, "4.0"},
		{VersionWin10V4_1, 0x00040001, "4.1"},
		{VersionWin10V5, 0x00050000, "5.0"},
		{VersionWin10V5_1, 0x00050001, "5.1"},
		{VersionWin10V5_2, 0x00050002, "5.2"},
		{VersionWin10V5_3, 0x00050003, "5.3"},
		{VersionCopper, 0x00060000, "6.0"},
	} {
		if uint32(c.v) != c.want || c.v.String() != c.s || MakeVersion(c.v.Major(), c.v.Minor()) != c.v {
			t.Errorf("%s: %#x", c.s, uint32(c.v))
		}
	}
}

func TestLinux61AsksForVersionsNewestFirst(t *testing.T) {
	want := []string{"5.3", "5.2", "5.1", "5.0", "4.1", "4.0", "3.0", "2.4"}
	if len(Linux61Versions) != len(want) {
		t.Fatalf("%d versions", len(Linux61Versions))
	}
	for i, v := range Linux61Versions {
		if v.String() != want[i] {
			t.Errorf("version %d: %s, want %s", i, v, want[i])
		}
	}
}

func TestConnectionNumbers(t *testing.T) {
	if MessageConnectionID != 1 || MessageConnectionID4 != 4 || MessageSINT != 2 || SynICMessageType != 1 || MaxChannelRelIDs != 2048 {
		t.Fatal("VMBus connection numbers differ from linux-guest-hyperv-facts.md §3-§4")
	}
	if ChannelNamedPipeMode != 0x10 || ChannelTLNPIProviderOffer != 0x2000 || PipeTypeMessage != 4 {
		t.Fatal("offer flags differ from §4.2")
	}
}
