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

// consoleInit programs 115200 8N1 with FIFOs, then lets the driver set the
// modem control lines.
func consoleInit() {
	x86.OUTB(com1Base+1, 0x00) // IER: no interrupts
	x86.OUTB(com1Base+3, 0x80) // LCR: DLAB
	x86.OUTB(com1Base+0, 0x01) // DLL: 115200 baud
	x86.OUTB(com1Base+1, 0x00) // DLM
	x86.OUTB(com1Base+3, 0x03) // LCR: 8N1
	x86.OUTB(com1Base+2, 0xc7) // FCR: enable and clear FIFOs
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
