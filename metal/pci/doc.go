// Package pci reads the host's PCI configuration space: the functions on
// every bus, their IDs, class codes and header types, their BARs (sized by
// the write-all-ones-and-restore method with decoding off) and their
// capability lists. Access is through ECAM (the ACPI MCFG's window for
// segment 0) or, without one, the legacy 0xCF8/0xCFC ports, behind the
// Config interface so the enumeration is host-tested over a fake space.
//
// Enumeration changes nothing it does not put back: the only writes are
// BAR sizing, which disables memory and I/O decoding for the moment, and
// restores each BAR and the command register afterwards. The one other
// write is SetCommand, for a caller that drives a device (decoding and bus
// mastering on), which returns the value to put back. A function whose
// configuration space contradicts itself (a BAR whose size is not a power
// of two, a capability pointer into the header, a capability loop) is
// skipped with a message naming it.
package pci
