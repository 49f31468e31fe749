# Boot media (`gohvctl media`, package tools/media/bootmedia): build/gohv.iso
# (hybrid ISO: CD and USB stick, BIOS and UEFI), build/pxe/ (TFTP root, GRUB
# netboot), build/gohv.img (raw GPT disk: BIOS boot partition and ESP). Needs
# grub-common, grub-pc-bin, grub-efi-amd64-bin, xorriso and mtools (Debian).
#
#   make iso CONFIG=gohv.toml                    the partition configuration and the
#                                                kernels and initrds it names (files
#                                                beside gohv.toml) on the medium
#   make disk CONFIG=gohv.toml MODULES="vmlinuz=/boot/vmlinuz-6.1.0-28-amd64"
#                                                a module's file from elsewhere
#
# test-media builds the same media with the selftest entry as the default,
# no menu timeout and the test configuration (tools/mediatest/testdata) into
# $(BUILD)/mediatest and boots each under QEMU (tools/mediatest); `make test`
# runs it.

MEDIA          := $(GO) run ./cmd/gohvctl media
MEDIA_TEST_DIR := $(BUILD)/mediatest
CONFIG         ?=
MODULES        ?=
MEDIA_MODULES   = $(if $(CONFIG),-config $(CONFIG)) $(foreach m,$(MODULES),-module $(m))

.PHONY: iso pxe disk media test-media

iso: image
	$(MEDIA) iso -kernel $(IMAGE) -out $(BUILD)/gohv.iso $(MEDIA_MODULES)

pxe: image
	$(MEDIA) pxe -kernel $(IMAGE) -out $(BUILD)/pxe $(MEDIA_MODULES)

disk: image
	$(MEDIA) disk -kernel $(IMAGE) -out $(BUILD)/gohv.img $(MEDIA_MODULES)

media: iso pxe disk

test-media: image
	$(MEDIA) all -kernel $(IMAGE) -out $(MEDIA_TEST_DIR) -default selftest -timeout 0 \
		-config tools/mediatest/testdata/gohv.toml
	$(GO) test -count=1 -parallel 2 -timeout 30m ./tools/mediatest -v \
		-media-dir $(CURDIR)/$(MEDIA_TEST_DIR)

test: test-media
