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

func TestInterruptFaultString(t *testing.T) {
	f := Fault{Source: 0x0018, Addr: 3, Write: true, Interrupt: true, Reason: "interrupt remapping entry not present (0x22)"}
	if got, want := f.String(), `source=00:03.0 interrupt=0x3 reason="interrupt remapping entry not present (0x22)"`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestCheckTarget(t *testing.T) {
	for _, c := range []struct {
		t  Target
		ok bool
	}{
		{Target{APICID: 0, Vector: 0x23}, true},
		{Target{APICID: 0xff, Vector: 0xfe}, true},
		{Target{APICID: 0, Vector: 15}, false},
		{Target{APICID: 0x100, Vector: 0x40}, false},
	} {
		if err := CheckTarget(c.t); (err == nil) != c.ok {
			t.Errorf("CheckTarget(%+v) = %v, want ok %v", c.t, err, c.ok)
		}
	}
}
