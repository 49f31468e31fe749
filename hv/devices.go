package hv

import (
	"fmt"
	"io"
	"sort"
	"sync"
)

// PortDevice is an emulated device on the I/O port bus. size is 1, 2 or 4;
// port is absolute. Called on the VP's thread; must not allocate. A
// partition's VPs call their devices at once from their own threads:
// a device guards its state (the UART and the I/O APIC with a mutex,
// root/devices' models with a mutex or atomics; TestVPsRaceOnSharedDevices
// and root/devices' TestVPsRaceOnLegacyPorts race two VPs on them).
type PortDevice interface {
	In(port uint16, size int) uint32
	Out(port uint16, size int, v uint32)
}

// MMIODevice is an emulated device in guest-physical space. off is relative
// to the range; len(data) is the access width (1, 2, 4 or 8), never split.
// Called on the VP's thread, from several VPs at once (see PortDevice).
// An instruction fetch from its range never reaches it: the fetching VP
// ends the partition (ErrUnsupported).
type MMIODevice interface {
	ReadMMIO(off uint64, data []byte)
	WriteMMIO(off uint64, data []byte)
}

type portRange struct {
	base, n uint16
	dev     PortDevice
}

type mmioRange struct {
	gpa, size uint64
	dev       MMIODevice
}

// AddPort routes ports [base, base+n) to dev. Call before Start.
func (p *Partition) AddPort(base, n uint16, dev PortDevice) {
	p.ports = append(p.ports, portRange{base, n, dev})
	sort.Slice(p.ports, func(a, b int) bool { return p.ports[a].base < p.ports[b].base })
}

// AddMMIO routes guest-physical [gpa, gpa+size) to dev. The range stays
// unmapped in the nested tables. Call before Start.
func (p *Partition) AddMMIO(gpa, size uint64, dev MMIODevice) error {
	if p.Mem.overlaps(gpa, size) {
		return errOverlap(gpa, size)
	}
	p.Mem.mmio = append(p.Mem.mmio, mmioRange{gpa, size, dev})
	return nil
}

func (p *Partition) portDevice(port uint16) PortDevice {
	for i := range p.ports {
		r := &p.ports[i]
		if port >= r.base && port-r.base < r.n {
			return r.dev
		}
	}
	return nil
}

// DebugExitPort is where QEMU's isa-debug-exit sits on the PC; a write there
// stops the partition with the value as its status.
const DebugExitPort = 0xf4

type debugExit struct{ p *Partition }

// errDebugExit is the reason of a stop through the debug-exit port.
var errDebugExit = fmt.Errorf("%w through the debug-exit port", ErrPowerOff)

func (d debugExit) In(port uint16, size int) uint32 { return 0xffff_ffff >> (32 - 8*size) }
func (d debugExit) Out(port uint16, size int, v uint32) {
	d.p.end(StateStopped, errDebugExit, v, true)
}

// UART is a 16550 as far as a console driver needs it: the divisor
// latch, LCR/MCR/SCR storage, a transmitter that is always empty (LSR THRE
// and TEMT), a receive FIFO the root fills from its console (Receive), and
// the received-data and transmitter-empty interrupts (IER bits 0 and 1)
// on its IRQ line, gated by MCR OUT2 as on a PC. Bytes written to THR are
// collected into lines that go to the console prefixed with the
// partition's name.
type UART struct {
	mu      sync.Mutex
	out     io.Writer
	irq     func(asserted bool) // the interrupt line; nil: none
	line    [256]byte
	n       int
	prefix  int
	ier     uint8
	lcr     uint8
	mcr     uint8
	scr     uint8
	dll     uint8
	dlm     uint8
	thre    bool // transmitter-empty interrupt pending
	level   bool // the line as last driven
	written uint64

	rx       [rxFIFOSize]byte // received bytes waiting for the guest (a ring)
	rxHead   int
	rxLen    int
	overrun  bool   // a byte arrived with the FIFO full: LSR OE until LSR is read
	received uint64 // bytes the guest read
}

// rxFIFOSize is how many received bytes wait for the guest: a 16550's
// 16-byte FIFO, made larger so typed lines are not lost while a guest is
// busy; beyond it bytes are dropped and LSR reports an overrun.
const rxFIFOSize = 256

// NewUART makes a COM port whose lines go to out as "name: text" and whose
// interrupt drives irq (nil for none).
func NewUART(name string, out io.Writer, irq func(asserted bool)) *UART {
	u := &UART{out: out, irq: irq}
	u.prefix = copy(u.line[:], name)
	u.prefix += copy(u.line[u.prefix:], ": ")
	u.n = u.prefix
	return u
}

// 16550 register offsets and bits.
const (
	uartTHR    = 0
	uartIER    = 1
	uartIIR    = 2
	uartLCR    = 3
	uartMCR    = 4
	uartLSR    = 5
	uartMSR    = 6
	uartSCR    = 7
	lcrDLAB    = 0x80
	lsrDR      = 0x01 // data ready
	lsrOE      = 0x02 // overrun error
	lsrTHRE    = 0x20
	lsrTEMT    = 0x40
	ierERBFI   = 0x01 // received data available interrupt
	ierETBEI   = 0x02 // transmitter holding register empty interrupt
	mcrOUT2    = 0x08 // gates the IRQ line on a PC
	iirNoIntr  = 0x01
	iirTHRE    = 0x02
	iirRDA     = 0x04 // received data available: above THRE in priority
	iirFIFOsOn = 0xc0
)

func (u *UART) In(port uint16, size int) uint32 {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch port & 7 {
	case uartTHR: // RBR
		if u.lcr&lcrDLAB != 0 {
			return uint32(u.dll)
		}
		if u.rxLen == 0 {
			return 0
		}
		b := u.rx[u.rxHead]
		u.rxHead = (u.rxHead + 1) % rxFIFOSize
		u.rxLen--
		u.received++
		u.drive()
		return uint32(b)
	case uartIER:
		if u.lcr&lcrDLAB != 0 {
			return uint32(u.dlm)
		}
		return uint32(u.ier)
	case uartIIR:
		if u.rxLen > 0 && u.ier&ierERBFI != 0 {
			return iirRDA | iirFIFOsOn // cleared by reading RBR until empty
		}
		if u.thre && u.ier&ierETBEI != 0 {
			u.thre = false // reading IIR that reports THRE clears it
			u.drive()
			return iirTHRE | iirFIFOsOn
		}
		return iirNoIntr | iirFIFOsOn
	case uartLCR:
		return uint32(u.lcr)
	case uartMCR:
		return uint32(u.mcr)
	case uartLSR:
		lsr := uint32(lsrTHRE | lsrTEMT)
		if u.rxLen > 0 {
			lsr |= lsrDR
		}
		if u.overrun {
			lsr |= lsrOE
			u.overrun = false // reading LSR clears the error bits
		}
		return lsr
	case uartMSR:
		return 0xb0 // CTS, DSR, DCD
	default:
		return uint32(u.scr)
	}
}

func (u *UART) Out(port uint16, size int, v uint32) {
	u.mu.Lock()
	defer u.mu.Unlock()
	b := uint8(v)
	switch port & 7 {
	case uartTHR:
		if u.lcr&lcrDLAB != 0 {
			u.dll = b
			return
		}
		u.put(b)
		// Writing THR clears the THRE interrupt; the byte leaves at once,
		// so it is pending again: a new edge on the line.
		u.thre = false
		u.drive()
		u.thre = true
	case uartIER:
		if u.lcr&lcrDLAB != 0 {
			u.dlm = b
			return
		}
		if b&ierETBEI != 0 && u.ier&ierETBEI == 0 {
			u.thre = true // enabling it with the transmitter empty raises it
		}
		u.ier = b & 0x0f
	case uartLCR:
		u.lcr = b
	case uartMCR:
		u.mcr = b & 0x1f
	case uartSCR:
		u.scr = b
	}
	u.drive()
}

// drive sets the IRQ line to what the registers say. Called with u.mu
// held; the line's receiver (the I/O APIC) never calls back into the UART.
func (u *UART) drive() {
	level := (u.thre && u.ier&ierETBEI != 0 || u.rxLen > 0 && u.ier&ierERBFI != 0) && u.mcr&mcrOUT2 != 0
	if level != u.level && u.irq != nil {
		u.irq(level)
	}
	u.level = level
}

func (u *UART) put(b byte) {
	u.written++
	switch {
	case b == '\n':
		u.flush()
	case b == '\r':
	case b < 0x20 || b >= 0x7f:
		u.line[u.n] = '.'
		u.n++
	default:
		u.line[u.n] = b
		u.n++
	}
	if u.n == len(u.line)-1 {
		u.flush()
	}
}

func (u *UART) flush() {
	u.line[u.n] = '\n'
	if u.out != nil {
		u.out.Write(u.line[:u.n+1])
	}
	u.n = u.prefix
}

// Flush writes a partial last line.
func (u *UART) Flush() {
	u.mu.Lock()
	if u.n > u.prefix {
		u.flush()
	}
	u.mu.Unlock()
}

// Receive queues bytes the root's console typed for the guest; bytes that
// find the FIFO full are dropped and counted as an overrun. It returns how
// many it queued. Safe from any goroutine.
func (u *UART) Receive(b []byte) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, c := range b {
		if u.rxLen == rxFIFOSize {
			u.overrun = true
			continue
		}
		u.rx[(u.rxHead+u.rxLen)%rxFIFOSize] = c
		u.rxLen++
		n++
	}
	u.drive()
	return n
}

// BytesWritten counts bytes the guest sent.
func (u *UART) BytesWritten() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.written
}
