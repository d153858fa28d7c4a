// Package apply makes one HAProxy instance run a rendered configuration
// through the Data Plane API, sending the least: nothing when it already
// runs it; the new file with runtime actions and no reload when only
// server addresses, weights or maintenance states differ; otherwise the
// new file with one reload. Certificates go through storage first. It is
// the only operator code that talks to the Data Plane API.
package apply

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/haproxytech/client-native/v5/models"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/haproxy/client"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

// Instance is the part of the Data Plane API client the applier needs.
type Instance interface {
	RawConfiguration(ctx context.Context) (string, int64, error)
	PushConfiguration(ctx context.Context, cfg []byte, p client.Push) (client.PushResult, error)
	Certificates(ctx context.Context) (models.SslCertificates, error)
	CreateCertificate(ctx context.Context, name string, pem []byte) error
	ReplaceCertificate(ctx context.Context, name string, pem []byte) error
	DeleteCertificate(ctx context.Context, name string) error
}

// Desired is what an instance should run.
type Desired struct {
	Config       []byte
	Certificates []model.Certificate
}

// Outcome says what Apply did.
type Outcome struct {
	// Changed is false when the instance already ran the configuration.
	Changed bool
	// Reloaded is true when a structural change needed a reload.
	Reloaded bool
	// Actions are the runtime actions sent instead of a reload.
	Actions []client.Action
	// Certificates lists the certificate files created or replaced.
	Certificates []string
}

const maxConflictRetries = 3

// Apply brings inst to desired.
func Apply(ctx context.Context, inst Instance, desired Desired) (Outcome, error) {
	var out Outcome
	stored, err := inst.Certificates(ctx)
	if err != nil {
		return out, fmt.Errorf("list certificates: %w", err)
	}
	certs, err := syncCertificates(ctx, inst, stored, desired.Certificates)
	if err != nil {
		return out, err
	}
	out.Certificates = certs
	out.Changed = len(certs) > 0

	for attempt := 0; ; attempt++ {
		running, version, err := inst.RawConfiguration(ctx)
		if err != nil {
			return out, fmt.Errorf("read running configuration: %w", err)
		}
		running = stripMeta(running)
		if running == string(desired.Config) {
			break
		}
		push := client.Push{Version: version, ForceReload: true}
		if actions, runtimeOnly := RuntimeActions([]byte(running), desired.Config); runtimeOnly {
			push = client.Push{Version: version, SkipReload: true, Actions: actions}
		}
		res, err := inst.PushConfiguration(ctx, desired.Config, push)
		if errors.Is(err, client.ErrVersionConflict) && attempt < maxConflictRetries {
			continue // someone else changed it: read again and redo the diff
		}
		if err != nil {
			return out, fmt.Errorf("push configuration: %w", err)
		}
		out.Changed = true
		out.Actions = push.Actions
		out.Reloaded = push.ForceReload || res.Status == 202
		break
	}

	if err := pruneCertificates(ctx, inst, stored, desired.Certificates); err != nil {
		return out, err
	}
	return out, nil
}

// stripMeta drops the # _version and # _md5hash lines the API adds.
func stripMeta(text string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(line, "# _version=") || strings.HasPrefix(line, "# _md5hash=") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// isOurs says whether a stored file is one the operator manages.
func isOurs(name string) bool { return strings.HasSuffix(name, ".pem") }

func fingerprint(pemBytes []byte) string {
	for {
		var block *pem.Block
		block, pemBytes = pem.Decode(pemBytes)
		if block == nil {
			return ""
		}
		if block.Type == "CERTIFICATE" {
			if c, err := x509.ParseCertificate(block.Bytes); err == nil {
				sum := sha256.Sum256(c.Raw)
				return hex.EncodeToString(sum[:])
			}
		}
	}
}

func syncCertificates(ctx context.Context, inst Instance, stored models.SslCertificates, want []model.Certificate) ([]string, error) {
	have := map[string]string{}
	for _, c := range stored {
		have[c.StorageName] = c.Sha256FingerPrint
	}
	var changed []string
	for _, c := range want {
		fp, exists := have[c.File]
		switch {
		case !exists:
			if err := inst.CreateCertificate(ctx, c.File, c.PEM.Reveal()); err != nil {
				return changed, fmt.Errorf("store certificate %s: %w", c.File, err)
			}
		case fp != fingerprint(c.PEM.Reveal()):
			if err := inst.ReplaceCertificate(ctx, c.File, c.PEM.Reveal()); err != nil {
				return changed, fmt.Errorf("replace certificate %s: %w", c.File, err)
			}
		default:
			continue
		}
		changed = append(changed, c.File)
	}
	return changed, nil
}

// pruneCertificates deletes stored files no longer wanted; files created
// by this apply are wanted, so the list read before it is enough.
func pruneCertificates(ctx context.Context, inst Instance, stored models.SslCertificates, want []model.Certificate) error {
	keep := map[string]bool{}
	for _, c := range want {
		keep[c.File] = true
	}
	for _, c := range stored {
		if isOurs(c.StorageName) && !keep[c.StorageName] {
			if err := inst.DeleteCertificate(ctx, c.StorageName); err != nil {
				return fmt.Errorf("delete certificate %s: %w", c.StorageName, err)
			}
		}
	}
	return nil
}

// serverLine matches the server lines the renderer writes.
var serverLine = regexp.MustCompile(`^    server (\S+) (\S+) weight (\d+)( disabled)?(.*)$`)

type serverState struct {
	backend, name string
	addr          string // host:port as written
	weight        string
	disabled      bool
}

// runtimeAddress reports whether a server address can change at runtime:
// an IP and port (a DNS name or a socket is structure).
func runtimeAddress(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && net.ParseIP(strings.Trim(host, "[]")) != nil
}

// structure returns the configuration with what runtime actions can change
// blanked out, and the server states it blanked.
func structure(cfg []byte) (string, []serverState) {
	var b strings.Builder
	var states []serverState
	backend := ""
	for _, line := range strings.Split(string(cfg), "\n") {
		if name, found := strings.CutPrefix(line, "backend "); found {
			backend = strings.TrimSpace(name)
		}
		if strings.HasPrefix(line, "    # ") {
			// Comments (each member's share) change with weights; HAProxy
			// ignores them.
			b.WriteString("    #\n")
			continue
		}
		m := serverLine.FindStringSubmatch(line)
		if m == nil || !runtimeAddress(m[2]) {
			b.WriteString(line)
			b.WriteByte('\n')
			continue
		}
		states = append(states, serverState{backend: backend, name: m[1], addr: m[2], weight: m[3], disabled: m[4] != ""})
		b.WriteString("    server " + m[1] + " <runtime>" + m[5] + "\n")
	}
	return b.String(), states
}

// RuntimeActions reports whether running can become desired at runtime
// alone and, if so, the actions that do it: fill, empty or reweigh
// server slots.
func RuntimeActions(running, desired []byte) ([]client.Action, bool) {
	rs, rStates := structure(running)
	ds, dStates := structure(desired)
	if rs != ds || len(rStates) != len(dStates) {
		return nil, false
	}
	var actions []client.Action
	for i, d := range dStates {
		r := rStates[i]
		if r == d {
			continue
		}
		if d.disabled {
			actions = append(actions,
				client.Action{"SetServerState", d.backend, d.name, "maint"},
				client.Action{"SetServerWeight", d.backend, d.name, d.weight})
			if d.addr != r.addr {
				host, port, _ := net.SplitHostPort(d.addr)
				actions = append(actions, client.Action{"SetServerAddr", d.backend, d.name, host, port})
			}
			continue
		}
		if d.addr != r.addr {
			host, port, _ := net.SplitHostPort(d.addr)
			actions = append(actions, client.Action{"SetServerAddr", d.backend, d.name, host, port})
		}
		if d.weight != r.weight {
			actions = append(actions, client.Action{"SetServerWeight", d.backend, d.name, d.weight})
		}
		if r.disabled {
			actions = append(actions, client.Action{"SetServerState", d.backend, d.name, "ready"})
		}
	}
	return actions, true
}
