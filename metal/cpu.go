package metal

// Declarations of metal's own assembly: rawSyscall6 in cpu_amd64.s and the
// entry points in boot_amd64.s, trap_amd64.s and kdata_amd64.s. The generic
// privileged instructions are package x86's.

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
