package agent

import (
	"bufio"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
)

// TestMetadataWatchOfRealProcs: a watch that asks for metadata alone and
// selects on the phase sees real procs as they succeed, each as nothing
// but its metadata, and never the proc that failed.
func TestMetadataWatchOfRealProcs(t *testing.T) {
	n := newNode(t)
	defer n.stop()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", n.srv.URL+procsURL+"?watch=true&fieldSelector=status.phase%3DSucceeded", nil)
	req.Header.Set("Accept", v1.MetadataMediaType(v1.KindPartialObjectMetadata))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != v1.MetadataMediaType(v1.KindPartialObjectMetadata) {
		t.Fatalf("watch: %d %s", resp.StatusCode, ct)
	}
	n.create(t, http.DefaultClient, "fails", "/bin/false")
	for _, name := range []string{"ok-1", "ok-2", "ok-3"} {
		n.create(t, http.DefaultClient, name, "/bin/true")
	}
	lines := make(chan []byte)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- slices.Clone(sc.Bytes())
		}
	}()
	var got []string
	timeout := time.After(30 * time.Second)
	for len(got) < 3 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended after %v", got)
			}
			var ev struct {
				Type   v1.WatchEventType
				Object map[string]json.RawMessage
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("event %s: %v", line, err)
			}
			var meta v1.ObjectMeta
			if err := json.Unmarshal(ev.Object["metadata"], &meta); err != nil {
				t.Fatalf("event %s: %v", line, err)
			}
			if ev.Type != v1.Added || len(ev.Object) != 3 || string(ev.Object["kind"]) != `"PartialObjectMetadata"` || meta.UID == "" {
				t.Errorf("event %s", line)
			}
			got = append(got, meta.Name)
		case <-timeout:
			t.Fatalf("after 30 s, saw only %v succeed", got)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"ok-1", "ok-2", "ok-3"}) {
		t.Errorf("succeeded: %v", got)
	}
}
