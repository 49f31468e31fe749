package metal

import (
	"testing"

	"gohv/x86"
)

func TestSignalDeliveryAndReturn(t *testing.T) {
	setupKernel(t)
	act := userAddr(0)
	*userU64(act) = 0xaaaa // handler
	*userU64(act + 8) = saOnStack
	*userU64(act + 16) = 0xbbbb // restorer
	if r := sys(sysRtSigaction, SIGSEGV, act, 0, 8); r != 0 {
		t.Fatalf("rt_sigaction = %d", int64(r))
	}
	ss := userAddr(64)
	*userU64(ss), *userU64(ss + 8), *userU64(ss + 16) = userAddr(4096), 0, 32<<10
	if r := sys(sysSigaltstack, ss, 0); r != 0 {
		t.Fatalf("sigaltstack = %d", int64(r))
	}
	f := entryFrame()
	*f = TrapFrame{RIP: 0x4242, RSP: userAddr(900 << 10), RAX: 5, RBX: 6, RFLAGS: x86.RFLAGSIF | x86.RFLAGSFixed, Vector: x86.VectorPF}
	entryFX()[x86.FXSaveMXCSROffset] = 0x80 // mark the FPU image
	if !deliverSignal(f, SIGSEGV, segvMapErr, 0x8) {
		t.Fatal("not delivered")
	}
	if f.RIP != 0xaaaa || f.RDI != SIGSEGV || *userU64(f.RSP) != 0xbbbb {
		t.Fatalf("handler frame rip %#x rdi %d ret %#x", f.RIP, f.RDI, *userU64(f.RSP))
	}
	if f.RSP < userAddr(4096) || f.RSP >= userAddr(4096)+32<<10 {
		t.Errorf("handler stack %#x not on the alternate stack", f.RSP)
	}
	if *userU32(f.RSI) != SIGSEGV || *userU32(f.RSI + 8) != segvMapErr || *userU64(f.RSI + 16) != 0x8 {
		t.Error("siginfo fields wrong")
	}
	// The runtime redirects the context to sigpanic; rt_sigreturn applies it.
	uc := f.RDX
	g := (*[32]uint64)(x86.Ptr(uintptr(uc + ucMcontext)))
	if g[16] != 0x4242 || g[13] != 5 || g[11] != 6 {
		t.Fatalf("saved context rip %#x rax %d rbx %d", g[16], g[13], g[11])
	}
	g[16] = 0x5555
	entryFX()[x86.FXSaveMXCSROffset] = 0
	f.RSP += 8 // the handler's RET pops the restorer address
	f.RAX = sysRtSigreturn
	doSyscall(f)
	if f.RIP != 0x5555 || f.RAX != 5 || f.RBX != 6 || f.RFLAGS&x86.RFLAGSIF == 0 {
		t.Errorf("after sigreturn rip %#x rax %d rbx %d flags %#x", f.RIP, f.RAX, f.RBX, f.RFLAGS)
	}
	if entryFX()[x86.FXSaveMXCSROffset] != 0x80 {
		t.Error("FPU image not restored")
	}
}
