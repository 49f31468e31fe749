package main

// setupACPI is filled in once the acpi package lands.
func setupACPI() error { return nil }
