package passthrough

import (
	"testing"

	"gohv/root/devices"
)

// TestBARWindowIsTheHostBridges: the window BARs are placed and relocated
// in is the memory window of the host bridge the guest's DSDT describes,
// so Linux claims them where they are instead of moving them.
func TestBARWindowIsTheHostBridges(t *testing.T) {
	if BARWindowBase != devices.PCIWindowBase || BARWindowTop != devices.PCIWindowTop {
		t.Errorf("BARs in %#x-%#x, the host bridge's window %#x-%#x", BARWindowBase, BARWindowTop, devices.PCIWindowBase, devices.PCIWindowTop)
	}
}
