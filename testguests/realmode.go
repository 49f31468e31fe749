package testguests

import (
	"gohv/hv"
	"gohv/hv/vcpu"
	"gohv/x86"
)

// RealModeBase is where the real-mode test guest starts (CS:IP 0000:7C00,
// as a BIOS starts a boot sector).
const RealModeBase = 0x7c00

// RealModeStatus is what the real-mode guest writes to the debug-exit port.
const RealModeStatus = 0x1234

// realModeCode prints "real" on COM1 with 16-bit instructions and stops
// through the debug-exit port with a 16-bit OUT of RealModeStatus.
var realModeCode = []byte{
	0xba, 0xf8, 0x03, //       mov dx, 0x3f8
	0xb0, 'r', 0xee, //        mov al, 'r'; out dx, al
	0xb0, 'e', 0xee, //        mov al, 'e'; out dx, al
	0xb0, 'a', 0xee, //        mov al, 'a'; out dx, al
	0xb0, 'l', 0xee, //        mov al, 'l'; out dx, al
	0xb0, '\n', 0xee, //       mov al, '\n'; out dx, al
	0xba, 0xf4, 0x00, //       mov dx, 0xf4
	0xb8, 0x34, 0x12, //       mov ax, 0x1234
	0xef, //                   out dx, ax
	0xf4, //                   hlt
}

// LoadRealMode sets VP 0 of p to real mode (CR0.PE clear: unrestricted
// guest on VT-x, plain real mode on AMD-V) at 0000:7C00 with the test code
// there.
func LoadRealMode(p *hv.Partition) error {
	if err := p.Mem.WriteRAM(RealModeBase, realModeCode); err != nil {
		return err
	}
	// The RESET state with CS:IP at 0000:7C00, as a BIOS hands over a boot
	// sector.
	r := vcpu.ResetRegs()
	r.RIP = RealModeBase
	r.CR0 = x86.CR0ET
	r.CS = vcpu.Segment{Attrib: x86.SegTypeCodeXRA | x86.SegS | x86.SegP, Limit: 0xffff}
	r.IDTR = vcpu.DescTable{Limit: 0x3ff}
	r.GPR[x86.RSP] = RealModeBase
	p.VP(0).SetState(r)
	return nil
}
