package metal

import (
	"github.com/usbarmory/tamago/soc/intel/uart"

	"gohv/x86"
)

// The console is COM1, a 16550 UART, driven through tamago's driver. Kernel
// printing below runs with interrupts off and must not allocate: it formats
// into the UART byte by byte.

const com1Base = 0x3f8

var com1 = uart.UART{Index: 1, Base: com1Base}

// 16550 registers and fields tamago's uart package does not name (PC16550D
// datasheet, Table 2): the divisor latch, reached with LCR.DLAB set, and
// the line, FIFO and status bits metal sets or reads.
const (
	uartDLL = 0x00 // divisor latch, low byte (DLAB=1)
	uartDLM = 0x01 // divisor latch, high byte (DLAB=1)

	uartClockHz  = 1843200
	uartBaud     = 115200
	uartDivisor  = uartClockHz / 16 / uartBaud
	lcrDLAB      = 1 << 7 // divisor latch access
	lcrWordLen8  = 0b11   // 8 data bits, 1 stop bit, no parity
	fcrEnable    = 1 << 0
	fcrClearRx   = 1 << 1
	fcrClearTx   = 1 << 2
	fcrTrigger14 = 0b11 << 6 // receive trigger at 14 bytes
	lsrTEMT      = 1 << 6    // transmitter empty: holding and shift registers
)

// consoleInit programs 115200 8N1 with FIFOs, then lets the driver set the
// modem control lines.
func consoleInit() {
	x86.OUTB(com1Base+uart.IER, 0) // no interrupts
	x86.OUTB(com1Base+uart.LCR, lcrDLAB)
	x86.OUTB(com1Base+uartDLL, uint8(uartDivisor))
	x86.OUTB(com1Base+uartDLM, uint8(uartDivisor>>8))
	x86.OUTB(com1Base+uart.LCR, lcrWordLen8)
	x86.OUTB(com1Base+uart.FCR, fcrEnable|fcrClearRx|fcrClearTx|fcrTrigger14)
	com1.DTR, com1.RTS = true, true
	com1.Init()
}

// hostTest is set by the package's host tests: console bytes go to
// testConsole and TLB flushes are skipped, so kernel logic runs in a process.
var (
	hostTest       bool
	testConsole    [4096]byte
	testConsoleLen int
)

func kputc(c byte) {
	if hostTest {
		testConsole[testConsoleLen%len(testConsole)] = c
		testConsoleLen++
		return
	}
	if c == '\n' {
		com1.Tx('\r')
	}
	com1.Tx(c)
}

func kputs(s string) {
	for i := 0; i < len(s); i++ {
		kputc(s[i])
	}
}

func kputbytes(b []byte) {
	for _, c := range b {
		kputc(c)
	}
}

func kputhex(v uint64) {
	const digits = "0123456789abcdef"
	var buf [18]byte
	i := len(buf)
	for {
		i--
		buf[i] = digits[v&15]
		v >>= 4
		if v == 0 {
			break
		}
	}
	i--
	buf[i] = 'x'
	i--
	buf[i] = '0'
	kputbytes(buf[i:])
}

func kputdec(v uint64) {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	kputbytes(buf[i:])
}

func kputint(v int64) {
	if v < 0 {
		kputc('-')
		kputdec(uint64(-v))
		return
	}
	kputdec(uint64(v))
}

func consoleWrite(b []byte) { kputbytes(b) }

// ConsoleRead copies the bytes COM1 has received into p without waiting
// and returns how many (0 when none). It polls the line status register:
// metal does not route the host UART's interrupt. Go side; any goroutine,
// one reader at a time.
func ConsoleRead(p []byte) int {
	if hostTest {
		return 0
	}
	n := 0
	for n < len(p) {
		c, ok := com1.Rx()
		if !ok {
			break
		}
		p[n] = c
		n++
	}
	return n
}
