package testguests

import "encoding/binary"

// mbLoad is where the Multiboot kernels here load (their header's address
// fields): 1 MiB, the header at the start, code at mbLoad+0x20 and a
// message at mbLoad+0x80.
const mbLoad = 0x100000

// multibootFile is a Multiboot (v1) kernel file loaded whole at mbLoad
// through the header's address fields, entered at mbLoad+0x20 where code
// goes (at most 0x60 bytes), with msg (NUL-terminated) at mbLoad+0x80.
func multibootFile(code []byte, msg string) []byte {
	f := make([]byte, 0x80)
	le := binary.LittleEndian
	const flags = 1<<0 | 1<<1 | 1<<16 // page-align modules, memory info, address fields
	le.PutUint32(f[0:], 0x1badb002)
	le.PutUint32(f[4:], flags)
	le.PutUint32(f[8:], -(0x1badb002+flags)&0xffff_ffff)
	le.PutUint32(f[12:], mbLoad)      // header_addr
	le.PutUint32(f[16:], mbLoad)      // load_addr
	le.PutUint32(f[20:], 0)           // load_end_addr: the whole file
	le.PutUint32(f[24:], 0)           // bss_end_addr: no bss
	le.PutUint32(f[28:], mbLoad+0x20) // entry_addr
	if len(code) > 0x60 {
		panic("testguests: Multiboot code longer than 0x60 bytes")
	}
	copy(f[0x20:], code)
	return append(f, msg+"\x00"...)
}

// MultibootKernel returns a Multiboot (v1) kernel file, loaded at 1 MiB
// through the header's address fields. In 32-bit protected mode it checks
// the boot magic in EAX, prints its greeting on COM1 and writes the upper
// memory size from the Multiboot information (mem_upper, in MiB) to the
// debug-exit port; a wrong magic exits with 0xBAD.
func MultibootKernel() []byte {
	code := []byte{
		0x3d, 0x02, 0xb0, 0xad, 0x2b, // 20: cmp eax, 0x2BADB002
		0x75, 0x1f, //                   25: jne 46
		0xbe, 0x80, 0x00, 0x10, 0x00, // 27: mov esi, 0x100080 (message)
		0x66, 0xba, 0xf8, 0x03, //       2c: mov dx, 0x3f8
		0xac,       //                   30: lodsb
		0x84, 0xc0, //                   31: test al, al
		0x74, 0x03, //                   33: jz 38
		0xee,       //                   35: out dx, al
		0xeb, 0xf8, //                   36: jmp 30
		0x8b, 0x43, 0x08, //             38: mov eax, [ebx+8]   mem_upper in KiB
		0xc1, 0xe8, 0x0a, //             3b: shr eax, 10
		0x66, 0xba, 0xf4, 0x00, //       3e: mov dx, 0xf4
		0xef,       //                   42: out dx, eax
		0xf4,       //                   43: hlt
		0xeb, 0xfd, //                   44: jmp 43
		0xb8, 0xad, 0x0b, 0x00, 0x00, // 46: mov eax, 0xbad
		0x66, 0xba, 0xf4, 0x00, //       4b: mov dx, 0xf4
		0xef, //                         4f: out dx, eax
		0xf4, //                         50: hlt
	}
	return multibootFile(code, "hello from a Multiboot kernel in protected mode\n")
}

// MultibootTripleFault returns a Multiboot (v1) kernel file that prints
// TripleFaultGreeting on COM1 and then triple-faults: it loads an IDT of
// limit 0 and executes UD2, so the #UD finds no gate, nor does the #GP
// that raises, nor the double fault after it (interrupts stay disabled as
// Multiboot leaves them). A partition configuration can name it, so the
// image tests see a triple fault end its own partition beside a Linux one.
func MultibootTripleFault() []byte {
	code := []byte{
		0xbe, 0x80, 0x00, 0x10, 0x00, // 20: mov esi, 0x100080 (message)
		0x66, 0xba, 0xf8, 0x03, //       25: mov dx, 0x3f8
		0xac,       //                   29: lodsb
		0x84, 0xc0, //                   2a: test al, al
		0x74, 0x03, //                   2c: jz 31
		0xee,       //                   2e: out dx, al
		0xeb, 0xf8, //                   2f: jmp 29
		0x0f, 0x01, 0x1d, 0x40, 0x00, 0x10, 0x00, // 31: lidt [0x100040]
		0x0f, 0x0b, //                   38: ud2
		0xf4,       //                   3a: hlt (never reached)
		0xeb, 0xfd, //                   3b: jmp 3a
		0, 0, 0, //                      3d: pad
		0, 0, 0, 0, 0, 0, //             40: IDTR: limit 0, base 0
	}
	return multibootFile(code, TripleFaultGreeting+"\n")
}

// TripleFaultGreeting is the line MultibootTripleFault prints before it
// faults.
const TripleFaultGreeting = "a Multiboot kernel about to triple-fault"
