module gohv

go 1.26.8

require (
	github.com/usbarmory/tamago v1.26.5
	golang.org/x/arch v0.33.0
)

require github.com/pelletier/go-toml/v2 v2.4.3

require github.com/google/uuid v1.6.0

require (
	github.com/google/btree v1.1.2 // indirect
	golang.org/x/sys v0.26.0
	golang.org/x/time v0.7.0 // indirect
	gvisor.dev/gvisor v0.0.0-20250523182742-eede7a881b20
)
