package compat_test

import "testing"

// startOfficial starts the binary at bin with an HAProxy beside it.
func startOfficial(t testing.TB, tg *target, bin string) {
	t.Fatal("DATAPLANEAPI_BIN: not implemented yet")
}
