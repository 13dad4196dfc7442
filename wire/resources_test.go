package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// TestRegisterResourcesEncoding: Register carries "resources" only when
// set, as a map with exactly the five keys in field order, controllers
// never nil.
func TestRegisterResourcesEncoding(t *testing.T) {
	base := Register{ProcIDs: []string{}, ShutdownState: "active"}
	for _, tc := range []struct {
		name     string
		res      *AgentResources
		wantKeys int    // top-level keys, "type" included
		wantRes  []byte // the encoded resources value; nil when absent
		back     *AgentResources
	}{
		{"absent", nil, 6, nil, nil},
		{"nil controllers", &AgentResources{Backend: "none", Detail: "no cgroup v2"}, 7,
			[]byte("\x85" + "\xa7backend\xa4none" + "\xa6detail\xacno cgroup v2" + "\xabcontrollers\x90" +
				"\xabbest_effort\xc2" + "\xadperf_counters\xa0"),
			&AgentResources{Backend: "none", Detail: "no cgroup v2", Controllers: []string{}}},
		{"full", &AgentResources{Backend: "systemd", Detail: "system", Controllers: []string{"cpu", "memory"}, BestEffort: true,
			PerfCounters: "available"}, 7,
			[]byte("\x85" + "\xa7backend\xa7systemd" + "\xa6detail\xa6system" + "\xabcontrollers\x92\xa3cpu\xa6memory" +
				"\xabbest_effort\xc3" + "\xadperf_counters\xa9available"),
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			m.Resources = tc.res
			b, err := EncodeMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			g := genericOf(t, b)
			if len(g) != tc.wantKeys {
				t.Errorf("keys %v, want %d", keys(g), tc.wantKeys)
			}
			_, has := g["resources"]
			if has != (tc.wantRes != nil) {
				t.Errorf("resources present = %v", has)
			}
			if tc.wantRes != nil {
				// The resources map is the last field: it ends the frame.
				if !bytes.HasSuffix(b, append([]byte("\xa9resources"), tc.wantRes...)) {
					t.Errorf("frame % x does not end with resources % x", b, tc.wantRes)
				}
			}
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			want := m
			if tc.back != nil {
				want.Resources = tc.back
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip\n got %#v\nwant %#v", got, want)
			}
		})
	}
}

// TestRegisterWithoutResourcesUnchanged: a Register without Resources
// encodes byte for byte as before the extension existed.
func TestRegisterWithoutResourcesUnchanged(t *testing.T) {
	m := Register{Conn: ConnInfo{ConnID: "c", GroupID: "g"}, Proc: ProcInfo{Pid: 1, Hostname: "h"},
		ProcIDs: []string{"a"}, AccessToken: "t", ShutdownState: "active"}
	want := frame(t, kv{"type", "Register"},
		kv{"conn", raw(frame(t, kv{"conn_id", "c"}, kv{"group_id", "g"}, kv{"restricted_exe", nil}))},
		kv{"proc", raw(frame(t, kv{"pid", 1}, kv{"ppid", 0}, kv{"uid", 0}, kv{"euid", 0}, kv{"username", nil},
			kv{"gid", 0}, kv{"egid", 0}, kv{"groupname", nil}, kv{"hostname", "h"}))},
		kv{"proc_ids", []string{"a"}}, kv{"access_token", "t"}, kv{"shutdown_state", "active"})
	got, err := EncodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding\n got % x\nwant % x", got, want)
	}
}
