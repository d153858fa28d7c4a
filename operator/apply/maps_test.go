package apply

import (
	"reflect"
	"testing"

	"github.com/haproxy-tcp-operator/haproxy-tcp-operator/operator/model"
)

func TestMapActionsKeepEveryConnectionRouted(t *testing.T) {
	weights := func(entries ...string) model.Map {
		m := model.Map{Name: "tcpm-fe-443-weights.map"}
		for i := 0; i < len(entries); i += 2 {
			m.Entries = append(m.Entries, model.MapEntry{Key: entries[i], Value: entries[i+1]})
		}
		return m
	}
	hosts := func(entries ...string) model.Map {
		m := weights(entries...)
		m.Name = "tcpm-fe-443-hosts.map"
		return m
	}
	running := func(ms ...model.Map) map[string]mapEntries {
		out := map[string]mapEntries{}
		for _, m := range ms {
			out[m.Name] = entriesOf(m)
		}
		return out
	}
	tests := map[string]struct {
		running []model.Map
		desired []model.Map
		want    []string
	}{
		"nothing changed, nothing sent": {
			running: []model.Map{weights("0:9899", "a", "9900:9999", "b")},
			desired: []model.Map{weights("0:9899", "a", "9900:9999", "b")},
		},
		"a weight change adds the new ranges behind the old ones, then removes the old": {
			running: []model.Map{weights("0:9899", "a", "9900:9999", "b")},
			desired: []model.Map{weights("0:4999", "a", "5000:9999", "b")},
			want: []string{
				"add map tcpm-fe-443-weights.map 0:4999 a", "add map tcpm-fe-443-weights.map 5000:9999 b",
				"del map tcpm-fe-443-weights.map 0:9899", "del map tcpm-fe-443-weights.map 9900:9999",
			},
		},
		"a range that changes hands is set in place": {
			running: []model.Map{weights("0:9999", "a")},
			desired: []model.Map{weights("0:9999", "b")},
			want:    []string{"set map tcpm-fe-443-weights.map 0:9999 b"},
		},
		"a new host's ranges exist before the host points at them; a gone host stops routing before its ranges go": {
			running: []model.Map{hosts("old.example", "5"), weights("50000:59999", "old")},
			desired: []model.Map{hosts("new.example", "7"), weights("70000:79999", "new")},
			want: []string{
				"add map tcpm-fe-443-weights.map 70000:79999 new",
				"add map tcpm-fe-443-hosts.map new.example 7",
				"del map tcpm-fe-443-hosts.map old.example",
				"del map tcpm-fe-443-weights.map 50000:59999",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, a := range mapActions(running(tc.running...), tc.desired) {
				got = append(got, a.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("actions\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
