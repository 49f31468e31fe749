package metal

// Declarations of the privileged-instruction leaves in cpu_amd64.s and the
// entry points in boot_amd64.s, trap_amd64.s and kdata_amd64.s.

func rdtsc() uint64
func rdrand() (v uint64, ok bool)
func inb(port uint16) uint8
func outb(port uint16, val uint8)
func outw(port uint16, val uint16)
func outl(port uint16, val uint32)
func inl(port uint16) uint32
func lgdt(desc uintptr)
func lidt(desc uintptr)
func ltr(sel uint16)
func readCR2() uint64
func writeCR3(v uint64)
func invlpg(va uintptr)
func fxsave(area uintptr)
func ldmxcsr(v uint32)
func halt()
func interruptsEnabled() bool
func rawSyscall6(num, a1, a2, a3, a4, a5, a6 uintptr) (ret uintptr)

func boot32()
func entry64()
func syscallEntry()
func idleLoop()
func resume()
func vectorAddr(i int) uintptr
func rt0Entry() uintptr
func idleLoopAddr() uintptr
func syscallEntryAddr() uintptr

// Model-specific registers (Intel SDM Vol. 4, AMD APM Vol. 2 App. A).
const (
	msrAPICBase = 0x1b
	msrEFER     = 0xc0000080
	msrSTAR     = 0xc0000081
	msrLSTAR    = 0xc0000082
	msrFMASK    = 0xc0000084
	msrFSBase   = 0xc0000100
	msrGSBase   = 0xc0000101

	eferSCE = 1 << 0
	eferNXE = 1 << 11
)

// RFLAGS bits.
const (
	flagTF = 1 << 8
	flagIF = 1 << 9
	flagDF = 1 << 10
	flagAC = 1 << 18
)

func bootSymbols() (boot32, entry64 uintptr)
