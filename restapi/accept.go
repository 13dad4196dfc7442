package restapi

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	v1 "procstar.dev/procstar/api/v1"
)

// wantsMetadata reads the Accept header of a GET: it reports whether the
// client asked for procs' metadata alone (PartialObjectMetadata; for a
// collection, which is a list or a watch, also PartialObjectMetadataList).
//
// Media types are taken in the order given, skipping q=0. The first one
// without an "as" parameter means the whole object, which is what every
// GET returned before views existed (whatever the type named: the body is
// JSON regardless). One with "as" is a view: the first view served here
// wins. If the header names views only, none of them served here (such as
// kubectl's as=Table), the request fails with 406, as Kubernetes' does, so
// that the client can fall back.
func wantsMetadata(r *http.Request, collection bool) (bool, error) {
	asked := false
	for _, h := range r.Header.Values("Accept") {
		for entry := range strings.SplitSeq(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(entry))
			if err != nil {
				continue
			}
			if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q <= 0 {
				continue
			}
			as, view := params["as"]
			if !view {
				return false, nil
			}
			asked = true
			if (mt == "application/json" || mt == "application/*" || mt == "*/*") &&
				params["g"] == "meta.k8s.io" && params["v"] == "v1" &&
				(as == v1.KindPartialObjectMetadata || (collection && as == v1.KindPartialObjectMetadataList)) {
				return true, nil
			}
		}
	}
	if asked {
		want := v1.MetadataMediaType(v1.KindPartialObjectMetadata)
		if collection {
			want += " or " + v1.MetadataMediaType(v1.KindPartialObjectMetadataList)
		}
		return false, fmt.Errorf("%w: Accept %q names no view served here; ask for application/json (whole procs) or %s",
			errNotAcceptable, strings.Join(r.Header.Values("Accept"), ", "), want)
	}
	return false, nil
}
