package metal

import (
	"encoding/binary"

	"gohv/metal/physmem"
)

// Boot modules: the files a boot loader loads into memory beside the kernel
// — Multiboot v1 modules (Multiboot Specification 0.6.96 §3.3: flags bit 3,
// mods_count, mods_addr) and Multiboot2 module tags (Multiboot2
// Specification 1.0 §3.6.6: type 3) — each a physical range and a string.
//
// A module's name is the last word of its string, from after the last '/'
// in that word. The two loaders gohv meets write the string differently:
// QEMU's -initrd "PATH NAME,..." passes "PATH NAME" (the whole option), GRUB's
// "module2 FILE NAME" passes "NAME" (the arguments after the file); both
// give NAME, and QEMU's "-initrd PATH" alone gives PATH's base name.
//
// kmain copies the ranges and names out of the boot information before its
// memory is reused (parse*Modules, mb2Module), checks them once the image's
// bounds are known (checkBootModules), and initMemory keeps their pages out
// of the page allocator (reserveBootModules), as it does the image's. A
// module that is not as it should be ends the boot with a FAIL verdict that
// names it. The Go side reads them through BootModules.

// Multiboot v1 module fields (§3.3).
const (
	mbFlagMods      = 1 << 3
	mbInfoModsCount = 20
	mbInfoModsAddr  = 24
	mbModEntrySize  = 16 // mod_start, mod_end, string, reserved

	mb2TagModule    = 3
	mb2ModuleHeader = 16 // type, size, mod_start, mod_end; the string follows

	maxBootModules = 32
	// moduleNameMax bounds a module's name (root/config allows 24).
	moduleNameMax = 64
	// moduleStringMax bounds the search for a v1 module string's NUL.
	moduleStringMax = 4096
)

// Module is a file the boot loader loaded beside the image.
type Module struct {
	// Name is the last word of the module's string (see the package's boot
	// module notes): "config" for the partition configuration.
	Name string
	// Data is the module's memory itself, not a copy: a view of physical
	// memory that stays reserved for it. Treat it as read-only.
	Data []byte
}

// bootModule is one module as kmain keeps it. Pointer-free.
type bootModule struct {
	start, end uint64
	name       [moduleNameMax]byte
	nameLen    int // the name's full length; name holds at most moduleNameMax bytes of it
}

func (m *bootModule) nameBytes() []byte { return m.name[:min(m.nameLen, moduleNameMax)] }

// moduleProblem is what is wrong with a boot module.
type moduleProblem uint8

const (
	modOK moduleProblem = iota
	modTableOutside
	modTooMany
	modTagTruncated
	modStringOutside
	modStringUnterminated
	modNoName
	modNameTooLong
	modDuplicate
	modEndBeforeStart
	modOutsideRAM
	modOverlapsImage
	modOverlapsModule
)

// moduleFault is the first bad module found, and why. Pointer-free.
type moduleFault struct {
	why     moduleProblem
	index   int // 1-based number of the module; 0 when it is about the table
	name    [moduleNameMax]byte
	nameLen int
	other   int    // the other module's number (modDuplicate, modOverlapsModule)
	a, b    uint64 // the addresses or sizes the message quotes
	c, d    uint64
}

func (f *moduleFault) bad() bool { return f.why != modOK }

// setModuleFault records the first fault only.
func (bi *bootInfo) setModuleFault(f moduleFault) {
	if !bi.moduleFault.bad() {
		bi.moduleFault = f
	}
}

// addModule appends a module whose string is str (without its NUL).
func (bi *bootInfo) addModule(start, end uint64, str []byte) {
	if bi.moduleCount == maxBootModules {
		bi.setModuleFault(moduleFault{why: modTooMany, a: maxBootModules + 1})
		return
	}
	m := &bi.modules[bi.moduleCount]
	bi.moduleCount++
	name := moduleNameOf(str)
	m.start, m.end = start, end
	m.nameLen = len(name)
	copy(m.name[:], name)
}

// moduleNameOf is the last word of a module string, after its last '/'.
func moduleNameOf(s []byte) []byte {
	end := len(s)
	for end > 0 && isBlank(s[end-1]) {
		end--
	}
	start := end
	for start > 0 && !isBlank(s[start-1]) && s[start-1] != '/' {
		start--
	}
	return s[start:end]
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// parseMultiboot1Modules copies the Multiboot v1 module table. A table or
// string outside memory is recorded as the module fault. Runs before the Go
// runtime; must not allocate.
func parseMultiboot1Modules(w physWindow, info uint64, bi *bootInfo) {
	flags, ok := w.u32(info)
	if !ok || flags&mbFlagMods == 0 {
		return
	}
	count, _ := w.u32(info + mbInfoModsCount)
	addr, _ := w.u32(info + mbInfoModsAddr)
	if count == 0 {
		return
	}
	if count > maxBootModules {
		bi.setModuleFault(moduleFault{why: modTooMany, a: uint64(count)})
		return
	}
	if _, ok := w.slice(uint64(addr), uint64(count)*mbModEntrySize); !ok {
		bi.setModuleFault(moduleFault{why: modTableOutside, a: uint64(count), b: uint64(addr)})
		return
	}
	for i := uint64(0); i < uint64(count); i++ {
		e := uint64(addr) + i*mbModEntrySize
		start, _ := w.u32(e)
		end, _ := w.u32(e + 4)
		str, _ := w.u32(e + 8)
		n, why := cstringLen(w, uint64(str))
		if why != modOK {
			f := moduleFault{why: why, index: int(i) + 1, a: uint64(str), b: moduleStringMax}
			if s, ok := w.slice(uint64(str), uint64(n)); ok {
				f.nameLen = copy(f.name[:], moduleNameOf(s))
			}
			bi.setModuleFault(f)
			return
		}
		s, _ := w.slice(uint64(str), uint64(n))
		bi.addModule(uint64(start), uint64(end), s)
	}
}

// cstringLen finds the NUL ending the string at pa, within moduleStringMax
// bytes.
func cstringLen(w physWindow, pa uint64) (int, moduleProblem) {
	for n := 0; n < moduleStringMax; n++ {
		b, ok := w.slice(pa+uint64(n), 1)
		if !ok {
			return n, modStringOutside
		}
		if b[0] == 0 {
			return n, modOK
		}
	}
	return moduleStringMax, modStringUnterminated
}

// mb2Module reads a Multiboot2 module tag (type 3): mod_start u32, mod_end
// u32, then the NUL-terminated string, all inside the tag's size. Runs
// before the Go runtime; must not allocate.
func mb2Module(tag []byte, bi *bootInfo) {
	index := bi.moduleCount + 1
	if len(tag) < mb2ModuleHeader+1 {
		bi.setModuleFault(moduleFault{why: modTagTruncated, index: index, a: uint64(len(tag)), b: mb2ModuleHeader + 1})
		return
	}
	str := tag[mb2ModuleHeader:]
	n := 0
	for n < len(str) && str[n] != 0 {
		n++
	}
	if n == len(str) {
		f := moduleFault{why: modStringUnterminated, index: index, b: uint64(len(str))}
		f.nameLen = copy(f.name[:], moduleNameOf(str))
		bi.setModuleFault(f)
		return
	}
	le := binary.LittleEndian
	bi.addModule(uint64(le.Uint32(tag[8:])), uint64(le.Uint32(tag[12:])), str[:n])
}

// checkBootModules checks every module copied out of the boot information:
// a name, distinct from the others; a range that does not end before it
// starts, lies in usable RAM, and overlaps neither the image [imageLo,
// imageHi) — whose bss holds metal's own memory: stacks, page bitmap, boot
// page tables — nor another module. The first fault is kept in
// bi.moduleFault. Runs before the Go runtime; must not allocate.
func checkBootModules(bi *bootInfo, imageLo, imageHi uint64) {
	if bi.moduleFault.bad() {
		return
	}
	for i := 0; i < bi.moduleCount; i++ {
		m := &bi.modules[i]
		f := moduleFault{index: i + 1, a: m.start, b: m.end}
		f.nameLen = copy(f.name[:], m.nameBytes())
		switch {
		case m.nameLen == 0:
			f.why = modNoName
		case m.nameLen > moduleNameMax:
			f.why, f.a = modNameTooLong, uint64(m.nameLen)
		case m.end < m.start:
			f.why = modEndBeforeStart
		case m.end > m.start && !ramHolds(&bi.ram, m.start, m.end):
			f.why = modOutsideRAM
		case overlaps(m.start, m.end, imageLo, imageHi):
			f.why, f.c, f.d = modOverlapsImage, imageLo, imageHi
		}
		for j := 0; j < i && !f.bad(); j++ {
			o := &bi.modules[j]
			switch {
			case string(o.nameBytes()) == string(m.nameBytes()):
				f.why, f.other = modDuplicate, j+1
			case overlaps(m.start, m.end, o.start, o.end):
				f.why, f.other = modOverlapsModule, j+1
			}
		}
		if f.bad() {
			bi.moduleFault = f
			return
		}
	}
}

func overlaps(a0, a1, b0, b1 uint64) bool { return a0 < b1 && b0 < a1 }

// ramHolds reports whether [start, end) lies inside one range of m.
func ramHolds(m *physmem.Map, start, end uint64) bool {
	for i := 0; i < m.Len(); i++ {
		if r := m.At(i); r.Start <= start && end <= r.End {
			return true
		}
	}
	return false
}

// reserveBootModules takes the modules' pages out of ram, as initMemory
// does the image's. Runs before the Go runtime; must not allocate.
func reserveBootModules(bi *bootInfo, ram *physmem.Map) {
	for i := 0; i < bi.moduleCount; i++ {
		if m := &bi.modules[i]; m.end > m.start {
			ram.Reserve(m.start, m.end)
		}
	}
}

// failBootModule ends the boot with a FAIL verdict naming the bad module.
// Never returns.
func failBootModule(f *moduleFault) {
	if verdictGiven.CompareAndSwap(false, true) {
		kputs("gohv: verdict FAIL ")
		f.print()
		kputs("\n")
	}
	powerOff(1)
}

// print writes the fault as the verdict's reason, e.g.
// `boot module 2 "initrd": 0x1000000-0x1800000 overlaps the gohv image (0x200000-0x1200000)`.
func (f *moduleFault) print() {
	if f.index == 0 {
		kputs("boot modules: ")
	} else {
		kputs("boot module ")
		kputdec(uint64(f.index))
		if f.nameLen > 0 {
			kputs(" \"")
			kputname(f.name[:min(f.nameLen, moduleNameMax)])
			kputs("\"")
		}
		kputs(": ")
	}
	switch f.why {
	case modTableOutside:
		kputs("the Multiboot module table (")
		kputdec(f.a)
		kputs(" entries at ")
		kputhex(f.b)
		kputs(") lies outside memory")
	case modTooMany:
		kputs("more than ")
		kputdec(maxBootModules)
		kputs(" modules (")
		kputdec(f.a)
		kputs(")")
	case modTagTruncated:
		kputs("truncated Multiboot2 module tag (")
		kputdec(f.a)
		kputs(" bytes, at least ")
		kputdec(f.b)
		kputs(")")
	case modStringOutside:
		kputs("its string at ")
		kputhex(f.a)
		kputs(" lies outside memory")
	case modStringUnterminated:
		kputs("its string has no terminating NUL within ")
		kputdec(f.b)
		kputs(" bytes")
	case modNoName:
		kputs("no name: its string is empty (GRUB: module2 FILE NAME)")
	case modNameTooLong:
		kputs("a name of ")
		kputdec(f.a)
		kputs(" bytes; at most ")
		kputdec(moduleNameMax)
	case modDuplicate:
		kputs("boot module ")
		kputdec(uint64(f.other))
		kputs(" has the same name")
	case modEndBeforeStart:
		kputs("ends at ")
		kputhex(f.b)
		kputs(", before its start ")
		kputhex(f.a)
	case modOutsideRAM:
		kputrange(f.a, f.b)
		kputs(" is not usable RAM")
	case modOverlapsImage:
		kputrange(f.a, f.b)
		kputs(" overlaps the gohv image (")
		kputrange(f.c, f.d)
		kputs(")")
	case modOverlapsModule:
		kputrange(f.a, f.b)
		kputs(" overlaps boot module ")
		kputdec(uint64(f.other))
	}
}

// reportBootModules prints the boot report's module line, e.g.
// "gohv: metal: 2 boot modules: config (412 bytes), vmlinuz (7880 bytes)".
func reportBootModules(bi *bootInfo) {
	kputs("gohv: metal: ")
	kputdec(uint64(bi.moduleCount))
	if bi.moduleCount == 1 {
		kputs(" boot module")
	} else {
		kputs(" boot modules")
	}
	for i := 0; i < bi.moduleCount; i++ {
		m := &bi.modules[i]
		if i == 0 {
			kputs(": ")
		} else {
			kputs(", ")
		}
		kputname(m.nameBytes())
		kputs(" (")
		kputdec(m.end - m.start)
		kputs(" bytes)")
	}
	kputs("\n")
}

func kputrange(lo, hi uint64) {
	kputhex(lo)
	kputs("-")
	kputhex(hi)
}

// kputname prints a name from the boot loader, control and non-ASCII bytes
// as '?', so it cannot break the console's lines.
func kputname(b []byte) {
	for _, c := range b {
		if c < ' ' || c > '~' {
			c = '?'
		}
		kputc(c)
	}
}

// bootModules returns the modules as the Go side sees them, their data
// through view (physBytes in the image, a test buffer on the host).
func bootModules(bi *bootInfo, view func(pa uint64, n int) []byte) []Module {
	mods := make([]Module, bi.moduleCount)
	for i := range mods {
		m := &bi.modules[i]
		mods[i] = Module{Name: string(m.nameBytes()), Data: view(m.start, int(m.end-m.start))}
	}
	return mods
}
