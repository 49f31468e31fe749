package iommu

import "testing"

func TestFaultString(t *testing.T) {
	f := Fault{Source: 0x0018, Addr: 0x7fe000, Write: true, Reason: "root entry not present"}
	if got, want := f.String(), `source=00:03.0 addr=0x7fe000 write reason="root entry not present"`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if got := (Fault{Source: 0x01ff}).SourceString(); got != "01:1f.7" {
		t.Fatalf("source 0x1ff: %s", got)
	}
}
