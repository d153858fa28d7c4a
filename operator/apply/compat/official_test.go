package compat_test

import (
	"os"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/dataplane/dataplanetest"
)

func TestMain(m *testing.M) {
	dataplanetest.RunReloadHelper()
	os.Exit(m.Run())
}

// startOfficial points tg at an official dataplaneapi (binary bin) and the
// HAProxy it drives, counting reloads on HAProxy's master.
func startOfficial(t testing.TB, tg *target, bin string) {
	t.Helper()
	o := dataplanetest.StartOfficial(t, bin)
	tg.endpoint = o.URL
	tg.user, tg.pass = o.User, o.Password
	tg.reloads = func() (int, error) { return masterReloads(o.MasterSocket) }
}
