package vmx

func vmxon(pa *uint64) uint64
func vmxoff()
func vmclear(pa *uint64) uint64
func vmptrld(pa *uint64) uint64
func vmread(field uint32) (v uint64, status uint64)
func vmreadN(fields *uint32, out *uint64, n uint64)
func vmread16(fields *[16]uint32, out *[16]uint64)
func vmwriteN(fields *uint32, vals *uint64, n uint64) uint64
func vmwrite(field uint32, v uint64) uint64
func invept(typ uint64, desc *[2]uint64) uint64
func invvpid(typ uint64, desc *[2]uint64) uint64
func vmenter(ctx *runContext)
func vmexitPoint()
