package vmx

func vmxon(pa *uint64) uint64
func vmxoff()
func vmclear(pa *uint64) uint64
func vmptrld(pa *uint64) uint64
func vmread(field uint32) (v uint64, status uint64)
func vmread3(fields *[3]uint32, out *[3]uint64)
func vmread6(fields *[6]uint32, out *[6]uint64)
func vmwrite(field uint32, v uint64) uint64
func invept(typ uint64, desc *[2]uint64) uint64
func invvpid(typ uint64, desc *[2]uint64) uint64
func vmenter(ctx *runContext)
func vmexitPoint()
