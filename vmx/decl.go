package vmx

func vmxon(pa *uint64) uint64
func vmxoff()
func vmclear(pa *uint64) uint64
func vmptrld(pa *uint64) uint64
func vmread(field uint32) (v uint64, status uint64)
func vmwrite(field uint32, v uint64) uint64
func invept(typ uint64, desc *[2]uint64) uint64
func invvpid(typ uint64, desc *[2]uint64) uint64
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
func rdmsr(msr uint32) uint64
func wrmsr(msr uint32, v uint64)
func readCR0() uint64
func writeCR0(v uint64)
func readCR3() uint64
func readCR4() uint64
func writeCR4(v uint64)
func selectors() (cs, ss, ds, es, fs, gs, tr uint16)
func descTables(gdt, idt *[10]byte)
func cli() uint64
func restoreFlags(f uint64)
func vmenter(ctx *runContext)
func vmexitPoint()
