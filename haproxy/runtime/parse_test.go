package runtime

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const stateHeader = "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port"

func TestParseServersState(t *testing.T) {
	for _, c := range []struct {
		name    string
		out     string
		want    []ServerState
		wantErr string
	}{{
		name: "two servers as HAProxy 2.6 prints them",
		out: "1\n" + stateHeader + "\n" +
			"3 be_a 1 s1 127.0.0.2 2 8 20 10 6 1 0 2 0 18 0 0 - 5 - 0 0 - 127.0.0.3 9\n" +
			"3 be_a 2 s2 127.0.0.1 0 1 5 5 0 1 0 0 0 0 0 0 db.example 2 - 1 4 - - 0\n",
		want: []ServerState{
			{BackendID: "3", Backend: "be_a", ID: "1", Name: "s1", Addr: "127.0.0.2", Port: 5, OpState: 2, AdminState: 8, UserWeight: 20, InitialWeight: 10, AgentAddr: "127.0.0.3", AgentPort: 9},
			{BackendID: "3", Backend: "be_a", ID: "2", Name: "s2", Addr: "127.0.0.1", Port: 2, OpState: 0, AdminState: 1, UserWeight: 5, InitialWeight: 5, UseSSL: true, CheckPort: 4, FQDN: "db.example"},
		},
	}, {
		name: "a backend without servers",
		out:  "1\n" + stateHeader + "\n",
		want: []ServerState{},
	}, {
		name:    "another format version",
		out:     "2\n" + stateHeader + "\n",
		wantErr: "unknown servers state format",
	}, {
		name:    "no header",
		out:     "1\n3 be_a 1 s1 127.0.0.2 2 8 20 10\n",
		wantErr: "server line before the header",
	}, {
		name:    "a short line",
		out:     "1\n" + stateHeader + "\n3 be_a 1 s1\n",
		wantErr: "has 4 fields, the header 25",
	}, {
		name:    "a weight that is not a number",
		out:     "1\n" + stateHeader + "\n3 be_a 1 s1 127.0.0.2 2 8 x 10 6 1 0 2 0 18 0 0 - 5 - 0 0 - - 0\n",
		wantErr: "column srv_uweight",
	}, {
		name:    "an error message",
		out:     "Can't find backend.",
		wantErr: "unknown servers state format",
	}} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseServersState(c.out)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, c.want)
			}
		})
	}
}

func TestServerStateNames(t *testing.T) {
	for _, c := range []struct {
		admin, op    int
		admName, op2 string
	}{
		{0, 2, "ready", "up"},
		{0x01, 0, "maint", "down"}, // forced maintenance (disable server, dynamic servers)
		{0x05, 0, "maint", "down"}, // "disabled" in the configuration
		{0x04, 2, "ready", "up"},   // "disabled" in the configuration, set ready since
		{0x20, 1, "maint", "up"},   // resolution failed
		{0x08, 2, "drain", "up"},
		{0x10, 3, "drain", "stopping"},
		{0x09, 2, "maint", "up"}, // maintenance wins over drain
	} {
		s := ServerState{AdminState: c.admin, OpState: c.op}
		if s.Admin() != c.admName || s.Operational() != c.op2 {
			t.Errorf("admin %#x op %d: got %s/%s, want %s/%s", c.admin, c.op, s.Admin(), s.Operational(), c.admName, c.op2)
		}
	}
}

func TestParseMaps(t *testing.T) {
	out := "# id (file) description\n" +
		"2 (/run/maps/sni.map) pattern loaded from file '/run/maps/sni.map' used by map at file 'h.cfg' line 11. curr_ver=0 next_ver=0 entry_cnt=1\n" +
		"-1 () pattern loaded from an inline list\n"
	got, err := ParseMaps(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Map{
		{ID: "2", File: "/run/maps/sni.map", Description: "pattern loaded from file '/run/maps/sni.map' used by map at file 'h.cfg' line 11. curr_ver=0 next_ver=0 entry_cnt=1"},
		{ID: "-1", File: "", Description: "pattern loaded from an inline list"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := ParseMaps("Unknown command"); err == nil {
		t.Error("a message parsed as a map list")
	}
}

func TestParseMapEntries(t *testing.T) {
	for _, c := range []struct {
		name, out string
		want      []MapEntry
		bad       bool
	}{
		{"entries", "0x55df8e459da0 a.example be_a\n0x7f4324046430 b.example be_b\n",
			[]MapEntry{{"0x55df8e459da0", "a.example", "be_a"}, {"0x7f4324046430", "b.example", "be_b"}}, false},
		{"a value with blanks", "0x1 k some value\n", []MapEntry{{"0x1", "k", "some value"}}, false},
		{"empty map", "", []MapEntry{}, false},
		{"no value", "0x1 k\n", nil, true},
		{"a message", "entry not found.", nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseMapEntries(c.out)
			if c.bad {
				if err == nil {
					t.Fatalf("parsed %+v; want an error", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestParseInfoAndStat(t *testing.T) {
	info, err := ParseInfo("Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nPid: 6377\n")
	if err != nil || info["Version"] != "2.6.12-1+deb12u4" || info["Pid"] != "6377" {
		t.Errorf("info %v, %v", info, err)
	}
	if _, err := ParseInfo("Unknown command"); err == nil {
		t.Error("a message parsed as info")
	}
	rows, err := ParseStat("# pxname,svname,scur,status,weight,\nbe,s1,3,UP,10,\nbe,BACKEND,3,UP,10,\n")
	if err != nil || len(rows) != 2 || rows[0]["svname"] != "s1" || rows[0]["scur"] != "3" || rows[1]["status"] != "UP" {
		t.Errorf("stat %v, %v", rows, err)
	}
	if _, err := ParseStat("No such proxy."); err == nil {
		t.Error("a message parsed as stats")
	}
}

// TestArgumentsAreCheckedBeforeAnythingIsSent: a word that would split or
// chain commands is refused without contacting HAProxy (the socket does
// not exist, so any attempt would fail with a dial error instead).
func TestArgumentsAreCheckedBeforeAnythingIsSent(t *testing.T) {
	c := New("/nonexistent/haproxy.sock")
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"chained command in a backend": func() error { return c.SetServerWeight(ctx, "be;shutdown", "s", "1") },
		"blank in a server":            func() error { return c.SetServerState(ctx, "be", "s x", StateReady) },
		"slash in a server":            func() error { return c.SetServerState(ctx, "be", "a/b", StateReady) },
		"weight above 256":             func() error { return c.SetServerWeight(ctx, "be", "s", "257") },
		"weight not a number":          func() error { return c.SetServerWeight(ctx, "be", "s", "abc") },
		"unknown state":                func() error { return c.SetServerState(ctx, "be", "s", "up") },
		"newline in a map value":       func() error { return c.AddMapEntry(ctx, "/m.map", "k", "v\nclear map /m.map") },
		"reference as a key":           func() error { return c.DeleteMapEntry(ctx, "/m.map", "#0x1") },
		"version as a map":             func() error { return c.ClearMap(ctx, "@1") },
		"empty key":                    func() error { return c.SetMapEntry(ctx, "/m.map", "", "v") },
		"negative maxconn":             func() error { return c.SetFrontendMaxConn(ctx, "fe", -1) },
		"check port 0":                 func() error { return c.SetServerCheckPort(ctx, "be", "s", 0) },
		"server without address":       func() error { return c.AddServer(ctx, "be", "s", nil) },
		"chained raw command":          func() error { _, err := c.Execute(ctx, "show info;shutdown frontend f"); return err },
	} {
		err := call()
		if err == nil || strings.Contains(err.Error(), "connect") || strings.Contains(err.Error(), "no such file") {
			t.Errorf("%s: got %v; want a refusal before sending", name, err)
		}
	}
}

func TestCommandErrorsMatchTheirKind(t *testing.T) {
	for msg, want := range map[string]error{
		"No such backend.":    ErrNotFound,
		"No such server.":     ErrNotFound,
		"Can't find backend.": ErrNotFound,
		"entry not found.":    ErrNotFound,
		"Key not found.":      ErrNotFound,
		"Unknown map identifier. Please use #<id> or <file>.":            ErrNotFound,
		"Already exists a server with the same name in backend.":         ErrExists,
		"Server still has connections attached to it, cannot remove it.": ErrStillConnected,
	} {
		err := commandError("cmd", msg)
		if !errors.Is(err, want) {
			t.Errorf("%q does not match %v", msg, want)
		}
		if !strings.Contains(err.Error(), "cmd") || !strings.Contains(err.Error(), msg) {
			t.Errorf("error %q names neither the command nor the message", err)
		}
	}
	if err := commandError("cmd", "Backend must use a dynamic load balancing to support dynamic servers."); errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
		t.Errorf("%v matches a kind it is not", err)
	}
}

func TestParseLookup(t *testing.T) {
	for _, c := range []struct {
		out  string
		want Lookup
		bad  bool
	}{
		{`type=str, case=sensitive, found=yes, idx=tree, key="b.example", value="be_a", type="str"`, Lookup{true, "b.example", "be_a"}, false},
		{`type=str, case=sensitive, found=no`, Lookup{}, false},
		{`type=beg, case=sensitive, found=yes, idx=tree, key="ab", value="x, \"y\"", type="str"`, Lookup{true, "ab", `x, "y"`}, false},
		{`Unknown map identifier. Please use #<id> or <file>.`, Lookup{}, true},
		{`type=str, found=yes, value="v"`, Lookup{}, true},
	} {
		got, err := ParseLookup(c.out)
		if c.bad != (err != nil) || got != c.want {
			t.Errorf("%s: got %+v, %v; want %+v (error: %v)", c.out, got, err, c.want, c.bad)
		}
	}
}
