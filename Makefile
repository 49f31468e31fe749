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

# The Debian guest's cache (tools/debian; mk/guest.mk): the Linux partition
# tests and `make run` fetch Debian's current kernel and busybox into it once.
GUEST_DIR := $(BUILD)/guest

# Boot the image under QEMU with its default configuration: one Linux
# partition, Debian's current kernel (fetched into build/guest on first
# use; later runs make no network request) and a busybox shell initramfs,
# passed as the boot modules "vmlinuz" and "initrd", and a 64 MiB ext4 disk
# ("disk", build/run/disk.img, new each run) that the shell mounts on /mnt.
# The serial console is on stdin/stdout: the shell's input is the keyboard
# (Ctrl-] ? lists the partitions; Ctrl-] s shuts the partition down through
# Linux's hv_utils, as `exit` in the shell does; Ctrl-A x quits QEMU).
# Without apt-get, give the files (a kernel of your own gets no modules):
#   make run KERNEL=/path/to/bzImage BUSYBOX=/path/to/static/busybox
KERNEL  ?=
BUSYBOX ?=
# The host's CPUs under QEMU: gohv starts every one and runs its VPs on
# the application processors.
RUN_CPUS ?= 2
RUN_KERNEL  = $(or $(KERNEL),$(GUEST_DIR)/current/vmlinuz)
RUN_BUSYBOX = $(or $(BUSYBOX),$(GUEST_DIR)/current/busybox)
RUN_INITRD  = $(BUILD)/run/initrd.cpio
RUN_DISK    = $(BUILD)/run/disk.img
# The shell initramfs's modules: VMBus and the disk (hv_storvsc, sd_mod, ext4
# with the crc32c its metadata checksums need), and hv_utils for Ctrl-] s/r.
RUN_MODULES = hv_vmbus hv_storvsc sd_mod crc32c_generic ext4 hv_utils hv_netvsc
RUN_HELP    = make run: the Linux partition needs a kernel and a static busybox. It fetches Debian's with apt-get download into $(GUEST_DIR); where that cannot work, give them: make run KERNEL=/path/to/bzImage BUSYBOX=/path/to/static/busybox

run: image
	$(if $(and $(KERNEL),$(BUSYBOX)),,@$(GO) run ./cmd/gohvctl guest fetch -cache $(GUEST_DIR) || { echo "$(RUN_HELP)" >&2; exit 1; })
	@$(GO) run ./cmd/gohvctl guest initramfs -shell -cache $(GUEST_DIR) -busybox $(RUN_BUSYBOX) $(if $(KERNEL),,-modules "$(RUN_MODULES)") -out $(RUN_INITRD) || { echo "$(RUN_HELP)" >&2; exit 1; }
	@$(GO) run ./cmd/gohvctl guest disk -out $(RUN_DISK)
	$(GO) run ./cmd/gohvctl run -kernel $(IMAGE) -input -qemu "-smp $(RUN_CPUS)" -module vmlinuz=$(RUN_KERNEL) -module initrd=$(RUN_INITRD) -module disk=$(RUN_DISK)

vet:
	$(GO) vet ./...

test-host:
	$(GO) vet ./...
	$(GO) test ./...

test-image: image
	$(GO) test -count=1 -parallel 2 -timeout 40m ./tools/imagetest -image $(CURDIR)/$(IMAGE) \
		-guest-cache $(CURDIR)/$(GUEST_DIR) -v

test: test-host test-image

# bench: every benchmark in tools/imagetest — BenchmarkBoot,
# BenchmarkLinuxBoot, BenchmarkLinuxStorage, BenchmarkLinuxNetwork,
# BenchmarkLinuxSMP, BenchmarkLinuxSMPHost, BenchmarkPeerExits (issue 15's peer loop under its
# QEMU flags) — README.md's figures — one boot at a time.
bench: image
	$(GO) test -run '^$$' -bench . -benchtime 1x ./tools/imagetest -image $(CURDIR)/$(IMAGE) \
		-guest-cache $(CURDIR)/$(GUEST_DIR)

clean:
	rm -rf $(BUILD)

# Boot media (ISO, PXE, disk image), Bochs, and their tests: each adds its
# targets and appends itself to `test` (after the targets above).
-include mk/*.mk
