package main

// runBench is filled in by the benchmark work.
func runBench() {}
