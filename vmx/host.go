package vmx

import (
	"encoding/binary"

	"gohv/x86"
)

// hostState is what every VMCS's host-state area holds (the CPU's own
// state, the same for every VP on this CPU).
type hostState struct {
	cr0, cr3, cr4                        uint64
	cs, ss, ds, es, fs, gs, tr           uint16
	gdtBase, idtBase, trBase             uint64
	efer, pat                            uint64
	sysenterCS, sysenterESP, sysenterEIP uint64
	gsBase                               uint64
}

// readHostState reads this CPU's state. Interrupts must be off.
func readHostState() hostState {
	var h hostState
	h.cr0, h.cr3, h.cr4 = x86.ReadCR0(), x86.ReadCR3(), x86.ReadCR4()
	h.cs, h.ss, h.ds, h.es, h.fs, h.gs, h.tr = x86.Selectors()
	var gdt, idt [10]byte
	x86.DescTables(&gdt, &idt)
	h.gdtBase = binary.LittleEndian.Uint64(gdt[2:])
	h.idtBase = binary.LittleEndian.Uint64(idt[2:])
	// TR base from its 16-byte system descriptor in the GDT.
	d := (*[2]uint64)(x86.Ptr(uintptr(h.gdtBase + uint64(h.tr&x86.SelectorIndex))))
	h.trBase = x86.SystemDescriptorBase(*d)
	h.efer, h.pat = x86.RDMSR(x86.MsrEFER), x86.RDMSR(x86.MsrPAT)
	h.sysenterCS, h.sysenterESP, h.sysenterEIP = x86.RDMSR(x86.MsrSysenterCS), x86.RDMSR(x86.MsrSysenterESP), x86.RDMSR(x86.MsrSysenterEIP)
	h.gsBase = x86.RDMSR(x86.MsrGSBase)
	return h
}
