# gohv — see README.md. `make run` boots the image under QEMU; `make test`
# runs everything CI runs.

GO        ?= go
BUILD     := build
IMAGE     := $(BUILD)/gohv
ELF       := $(BUILD)/gohv.elf
# The image is an ordinary static linux/amd64 Go program linked at 2 MiB;
# metal (the freestanding runtime layer) supplies what Linux would.
IMAGE_ENV := GOOS=linux GOARCH=amd64 CGO_ENABLED=0
IMAGE_LDFLAGS := -T 0x200000 -w

.PHONY: all image run test test-host test-image bench clean vet

all: image

image: $(IMAGE)

$(IMAGE): FORCE
	@mkdir -p $(BUILD)
	$(IMAGE_ENV) $(GO) build -trimpath -ldflags '$(IMAGE_LDFLAGS)' -o $(ELF) ./cmd/gohv
	$(GO) run ./tools/mkimage -in $(ELF) -out $(IMAGE)

FORCE:

# Boot the image under QEMU with its default configuration; serial on stdout.
run: image
	$(GO) run ./cmd/gohvctl run -kernel $(IMAGE)

vet:
	$(GO) vet ./...

test-host:
	$(GO) vet ./...
	$(GO) test ./...

test-image: image
	$(GO) test -count=1 -parallel 2 -timeout 40m ./tools/imagetest -image $(CURDIR)/$(IMAGE) -v

test: test-host test-image

bench: image
	$(GO) test -run '^$$' -bench . -benchtime 1x ./tools/imagetest -image $(CURDIR)/$(IMAGE)

clean:
	rm -rf $(BUILD)

# Boot media (ISO, PXE, disk image), Bochs, and their tests: each adds its
# targets and appends itself to `test` (after the targets above).
-include mk/*.mk
