package controller

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/api/v1alpha1"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/apply"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/snapshot"
	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/translate"
)

var blameConfig = model.Config{
	Frontends: []*model.Frontend{
		{Name: "tcpm-fe-443", Sources: []string{"TCPMapping/a/web", "TLSContext/a/site"}},
		{Name: "tcpm-fe-192.0.2.55-3600", Sources: []string{"TCPMapping/b/db"}},
	},
	Backends:     []*model.Backend{{Name: "tcpm-be-443", Sources: []string{"TCPMapping/a/web"}}},
	Certificates: []model.Certificate{{File: "a_site.ca.pem", Sources: []string{"TLSContext/a/site"}}},
}

func TestBlameLines(t *testing.T) {
	tests := map[string]struct {
		line string
		want []string
	}{
		"a cipher HAProxy does not know blames the TLSContext, not its mappings": {
			"[ALERT] (1) : config : Proxy 'tcpm-fe-443': unable to set SSL cipher list to 'FOO' for bind '*:443' at [haproxy.cfg:40].",
			[]string{"TLSContext/a/site"},
		},
		"an address the host lacks blames the mappings of that listener": {
			"[ALERT] (1) : Starting frontend tcpm-fe-192.0.2.55-3600: cannot bind socket (Cannot assign requested address) [192.0.2.55:3600]",
			[]string{"TCPMapping/b/db"},
		},
		"a refused CA file blames its TLSContext": {
			"certificate file a_site.ca.pem refused: file should contain both certificate and private key",
			[]string{"TLSContext/a/site"},
		},
		"a line naming nothing of ours blames nobody": {"[ALERT] (1) : config : global: something", nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for ref := range blameLines([]string{tc.line}, blameConfig) {
				got = append(got, ref)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("blamed %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExclusionQuotesOnlyTheTenantsOwnLines(t *testing.T) {
	refused := &apply.RefusedError{Stage: apply.StageValidate, Lines: []string{
		"[ALERT] Proxy 'tcpm-fe-443': unable to set SSL cipher list to 'FOO'",
		"[ALERT] Starting frontend tcpm-fe-192.0.2.55-3600: cannot bind socket",
	}}
	ex := exclusionFor("TLSContext/a/site", 3, refused, blameConfig)
	if ex.Reason != v1alpha1.ReasonInvalidTLSSettings || ex.Generation != 3 {
		t.Errorf("verdict %+v", ex)
	}
	if !bytes.Contains([]byte(ex.Message), []byte("FOO")) || bytes.Contains([]byte(ex.Message), []byte("192.0.2.55")) {
		t.Errorf("message %q should quote its own line only", ex.Message)
	}
	if ex := exclusionFor("TCPMapping/b/db", 1, &apply.RefusedError{Stage: apply.StageReload, Lines: refused.Lines[1:]}, blameConfig); ex.Reason != v1alpha1.ReasonReloadFailed {
		t.Errorf("a refusal at reload: %+v", ex)
	}
}

func TestBisectFindsTheObjectHAProxyRefuses(t *testing.T) {
	snap := snapshot.Snapshot{HAProxy: v1alpha1.HAProxy{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "edge"}}}
	for _, n := range []string{"one", "two", "three", "four", "five"} {
		snap.TCPMappings = append(snap.TCPMappings, &v1alpha1.TCPMapping{
			ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: n, Generation: 1},
			Spec:       v1alpha1.TCPMappingSpec{Port: int32(3000 + len(snap.TCPMappings)), Service: "10.0.0.1:80"},
		})
	}
	res := translate.Translate(snap)
	validations := 0
	// HAProxy here refuses any configuration that still listens on 3003
	// (the mapping "four").
	refuses := func(_ context.Context, cfg []byte) error {
		validations++
		if bytes.Contains(cfg, []byte(":3003")) {
			return &apply.RefusedError{Stage: apply.StageValidate}
		}
		return nil
	}
	ref, ok := bisect(context.Background(), &snap, res, refuses)
	if !ok || ref != "TCPMapping/a/four" {
		t.Errorf("bisect found %q (%v), want TCPMapping/a/four", ref, ok)
	}
	if validations > 5 {
		t.Errorf("%d validations for 5 objects", validations)
	}
	if _, ok := bisect(context.Background(), &snap, res, func(context.Context, []byte) error {
		return &apply.RefusedError{Stage: apply.StageValidate}
	}); ok {
		t.Error("a configuration refused without any object blamed one")
	}
}
