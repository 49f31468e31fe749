module gohv

go 1.26.8

require (
	github.com/usbarmory/tamago v1.26.5
	golang.org/x/arch v0.33.0
)

require github.com/pelletier/go-toml/v2 v2.4.3

require github.com/google/uuid v1.6.0
