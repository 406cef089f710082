//go:build pgtesthooks

package main

import "C"

// pg_panic: a deliberate panic, for the test that a panic is an error answer (never a crash).
// Only in a library built with `-tags pgtesthooks` (scripts/ensure-opa-inproc.sh --test-hooks):
// the production library exports no test hook.
//
//export pg_panic
func pg_panic() (out *C.char) {
	defer guard(&out)
	panic("deliberate")
}
