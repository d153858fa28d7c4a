package dataplanetest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// ReloadHelperEnv set to "1" in the environment of a test binary makes
// RunReloadHelper act as a Data Plane API's reload command: HAProxy 2.6
// reloads through reload_cmd, and signalling the master (or its CLI's
// "reload") returns before the new worker runs and says nothing of a
// failure. Tests that start the official dataplaneapi give it their own
// binary as reload_cmd, with the master socket and HAProxy's log file as
// arguments.
const ReloadHelperEnv = "TCPM_TEST_RELOAD_HELPER"

// RunReloadHelper is for TestMain: when the binary was started as a
// reload command (ReloadHelperEnv), it reloads HAProxy, waits for the
// outcome and exits; otherwise it returns.
func RunReloadHelper() {
	if os.Getenv(ReloadHelperEnv) != "1" || len(os.Args) != 3 {
		return
	}
	if err := ReloadThroughMaster(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// MasterCommand sends one command to HAProxy's master CLI and reads the
// answer.
func MasterCommand(socket, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	// The 2.6 master CLI answers in full only once the request side is
	// closed.
	_ = c.(*net.UnixConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

// Processes is what the master's show proc says.
type Processes struct {
	// Reloads is the master's reload count.
	Reloads int
	// Failed is the master's failed-reload count.
	Failed int
	// Workers holds the PIDs of the workers.
	Workers map[string]bool
}

// ShowProc reads show proc from HAProxy's master CLI.
func ShowProc(socket string) (Processes, error) {
	out, err := MasterCommand(socket, "show proc")
	if err != nil {
		return Processes{}, err
	}
	p := Processes{Reloads: -1, Workers: map[string]bool{}}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[1] {
		case "master":
			if p.Reloads, err = strconv.Atoi(f[2]); err != nil {
				return p, fmt.Errorf("show proc: master reloads %q: %w", f[2], err)
			}
			if _, after, ok := strings.Cut(line, "[failed: "); ok {
				n, _, _ := strings.Cut(after, "]")
				p.Failed, _ = strconv.Atoi(n)
			}
		case "worker":
			p.Workers[f[0]] = true
		}
	}
	if p.Reloads < 0 {
		return p, fmt.Errorf("no master in show proc: %q", out)
	}
	return p, nil
}

// ReloadThroughMaster reloads HAProxy through its master CLI and waits
// until a new worker runs, or returns the new lines of logFile when the
// master's failed-reload count grows.
func ReloadThroughMaster(socket, logFile string) error {
	before, err := ShowProc(socket)
	if err != nil {
		return fmt.Errorf("show proc before the reload: %w", err)
	}
	var logSize int64
	if st, err := os.Stat(logFile); err == nil {
		logSize = st.Size()
	}
	_, _ = MasterCommand(socket, "reload")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling a process outside Go
		now, err := ShowProc(socket)
		if err != nil {
			continue // the master is re-executing
		}
		if now.Failed > before.Failed {
			msg := "reload failed"
			if b, err := os.ReadFile(logFile); err == nil && int64(len(b)) > logSize {
				msg += ":\n" + string(b[logSize:])
			}
			return errors.New(msg)
		}
		for pid := range now.Workers {
			if !before.Workers[pid] {
				return nil
			}
		}
	}
	return errors.New("no new worker within 30s")
}
