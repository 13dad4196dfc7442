package restapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
)

const (
	metaOne  = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
	metaList = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
	asTable  = "application/json;as=Table;g=meta.k8s.io;v=v1"
)

func TestWantsMetadata(t *testing.T) {
	tests := []struct {
		accept     string
		collection bool
		want       bool
		notAccept  bool
	}{
		{"", true, false, false},
		{"application/json", true, false, false},
		{"text/html, */*;q=0.8", false, false, false},
		{metaOne, false, true, false},
		{metaOne, true, true, false},
		{metaList, true, true, false},
		{metaList, false, false, true}, // a list view of one proc
		{"application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1", true, false, true},
		{asTable, true, false, true},
		{asTable + ", application/json", true, false, false},
		{asTable + ", " + metaList + ", application/json", true, true, false},
		{"application/json;q=0, " + metaOne, false, true, false},
		{metaOne + ";q=0, application/json", false, false, false},
		{"application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1;q=0", false, false, false},
		{"*/*;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", false, true, false},
		{"application/yaml;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", false, false, true},
		{"not a media type, " + metaOne, false, true, false},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("GET", "/", nil)
		if tt.accept != "" {
			r.Header.Set("Accept", tt.accept)
		}
		got, err := wantsMetadata(r, tt.collection)
		if got != tt.want || errors.Is(err, errNotAcceptable) != tt.notAccept || (err != nil && !tt.notAccept) {
			t.Errorf("Accept %q (collection %v): %v, %v; want %v, 406 %v", tt.accept, tt.collection, got, err, tt.want, tt.notAccept)
		}
	}
}

// metaKeys checks that a metadata view's JSON holds nothing but
// apiVersion, kind and metadata, and returns its name.
func metaKeys(t *testing.T, obj json.RawMessage) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatalf("object %s: %v", obj, err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if strings.Join(keys, ",") != "apiVersion,kind,metadata" {
		t.Errorf("metadata view has keys %v: %s", keys, obj)
	}
	var p v1.PartialObjectMetadata
	if err := json.Unmarshal(obj, &p); err != nil {
		t.Fatal(err)
	}
	if p.APIVersion != v1.MetaGroupVersion || p.Kind != v1.KindPartialObjectMetadata || p.Metadata.ResourceVersion == "" {
		t.Errorf("metadata view %s", obj)
	}
	return p.Metadata.Name
}

func TestV1MetadataViews(t *testing.T) {
	fb := v1Fixture() // web-1 Running; web-2 and db-1 Succeeded
	srv := testServer(t, fb, Options{})

	// A list: the field selector still selects on the status.
	r := do(t, srv, "GET", procsPath+"?fieldSelector=status.phase%3DSucceeded", "", "Accept: "+metaList)
	if r.code != 200 || r.header.Get("Content-Type") != metaList {
		t.Fatalf("list: %d %s %s", r.code, r.header.Get("Content-Type"), r.body)
	}
	var l struct {
		v1.TypeMeta
		Metadata v1.ListMeta
		Items    []json.RawMessage
	}
	if err := json.Unmarshal([]byte(r.body), &l); err != nil {
		t.Fatal(err)
	}
	if l.Kind != v1.KindPartialObjectMetadataList || l.APIVersion != v1.MetaGroupVersion || l.Metadata.ResourceVersion == "" || len(l.Items) != 2 {
		t.Fatalf("list %s", r.body)
	}
	if a, b := metaKeys(t, l.Items[0]), metaKeys(t, l.Items[1]); a+","+b != "db-1,web-2" {
		t.Errorf("list items %s, %s", a, b)
	}
	// An empty list has items [], as a ProcList has.
	r = do(t, srv, "GET", procsPath+"?labelSelector=app%3Dnone", "", "Accept: "+metaList)
	if r.code != 200 || !strings.Contains(r.body, `"items":[]`) {
		t.Errorf("empty list: %d %s", r.code, r.body)
	}

	// One proc, with its labels.
	r = do(t, srv, "GET", procsPath+"/web-1", "", "Accept: "+metaOne)
	if r.code != 200 || r.header.Get("Content-Type") != metaOne {
		t.Fatalf("get: %d %s %s", r.code, r.header.Get("Content-Type"), r.body)
	}
	if metaKeys(t, json.RawMessage(r.body)) != "web-1" || !strings.Contains(r.body, `"labels":{"app":"web","tier":"front"}`) {
		t.Errorf("get %s", r.body)
	}
	// Unknown procs are still 404 Status bodies.
	if r := do(t, srv, "GET", procsPath+"/nope", "", "Accept: "+metaOne); r.code != 404 {
		t.Errorf("get unknown: %d %s", r.code, r.body)
	}

	// A watch: ADDED for what exists, then each change, as metadata.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+procsPath+"?watch=true&labelSelector=app%3Dweb", nil)
	req.Header.Set("Accept", metaOne)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != metaOne {
		t.Fatalf("watch: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() (v1.WatchEventType, string) {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("watch ended: %v", sc.Err())
		}
		var ev struct {
			Type   v1.WatchEventType
			Object json.RawMessage
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %s: %v", sc.Bytes(), err)
		}
		return ev.Type, metaKeys(t, ev.Object)
	}
	for _, want := range []string{"web-1", "web-2"} {
		if typ, name := next(); typ != v1.Added || name != want {
			t.Errorf("got %s %s, want ADDED %s", typ, name, want)
		}
	}
	fb.finish("web-1")
	if typ, name := next(); typ != v1.Modified || name != "web-1" {
		t.Errorf("got %s %s, want MODIFIED web-1", typ, name)
	}

	// Views that are not served: 406, unless a plain type follows.
	for _, path := range []string{procsPath, procsPath + "/web-1", procsPath + "?watch=true"} {
		r := do(t, srv, "GET", path, "", "Accept: "+asTable)
		if r.code != http.StatusNotAcceptable {
			t.Errorf("%s as=Table: %d %s", path, r.code, r.body)
			continue
		}
		if s := decodeStatus(t, r); s.Reason != reasonNotAcceptable || !strings.Contains(s.Message, "as=PartialObjectMetadata") {
			t.Errorf("%s as=Table: %+v", path, s)
		}
	}
	r = do(t, srv, "GET", procsPath, "", "Accept: "+asTable+", application/json")
	if r.code != 200 || strings.Join(names(t, r.body), ",") != "db-1,web-1,web-2" {
		t.Errorf("fallback to whole procs: %d %s", r.code, r.body)
	}
}
