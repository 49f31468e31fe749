package pci

import (
	"encoding/binary"
	"testing"
)

// TestSetCommand: the command bits change as asked, the status
// register's pending error survives (no ones written to it: the fake
// fails the test otherwise), and the old value puts it back.
func TestSetCommand(t *testing.T) {
	s := q35(t)
	edu := Addr{0, 2, 0}
	f := s.fns[edu]
	binary.LittleEndian.PutUint16(f.cfg[offCommand:], 0)
	old := SetCommand(s, edu, CommandMemory|CommandBusMaster, 0)
	if got := binary.LittleEndian.Uint16(f.cfg[offCommand:]); old != 0 || got != CommandMemory|CommandBusMaster {
		t.Fatalf("old %#x, command %#x", old, got)
	}
	if st := binary.LittleEndian.Uint16(f.cfg[offCommand+2:]); st&0x8000 == 0 {
		t.Fatalf("status %#x: the pending error was cleared", st)
	}
	if prev := SetCommand(s, edu, 0, CommandBusMaster); prev != CommandMemory|CommandBusMaster {
		t.Fatalf("previous %#x", prev)
	}
	SetCommand(s, edu, old, 0xffff)
	if got := binary.LittleEndian.Uint16(f.cfg[offCommand:]); got != 0 {
		t.Fatalf("restored %#x", got)
	}
	if CommandIO != 1 || CommandMemory != 2 || CommandBusMaster != 4 {
		t.Fatal("command bits (PCI Local Bus 3.0, 6.2.2)")
	}
}
