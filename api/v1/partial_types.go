package v1

// Metadata-only views of procs, as Kubernetes serves them: a GET of the
// collection, of one proc or a watch whose Accept header asks for
// application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1 (or
// as=PartialObjectMetadataList for a list) gets each proc's metadata
// alone. A client that needs only names and labels, such as one that
// waits on a field selector or prints proc/NAME, then neither receives
// nor decodes specs and statuses.

const (
	// MetaGroupVersion is the apiVersion of the metadata-only views.
	MetaGroupVersion = "meta.k8s.io/v1"
	// KindPartialObjectMetadata is the kind of one proc's metadata.
	KindPartialObjectMetadata = "PartialObjectMetadata"
	// KindPartialObjectMetadataList is the kind of a list of them.
	KindPartialObjectMetadataList = "PartialObjectMetadataList"
)

// MetadataMediaType is the media type that asks for (in Accept) and
// names (in Content-Type) the view of kind KindPartialObjectMetadata or
// KindPartialObjectMetadataList.
func MetadataMediaType(kind string) string {
	return "application/json;as=" + kind + ";g=meta.k8s.io;v=v1"
}

// PartialObjectMetadata is a proc's metadata without its spec and status.
type PartialObjectMetadata struct {
	TypeMeta `json:",inline"`
	// metadata of the proc.
	Metadata ObjectMeta `json:"metadata"`
}

// PartialObjectMetadataList is the metadata of the procs a list selects.
type PartialObjectMetadataList struct {
	TypeMeta `json:",inline"`
	// metadata of the list.
	// +optional
	Metadata ListMeta `json:"metadata,omitzero"`
	// items are the procs' metadata.
	Items []PartialObjectMetadata `json:"items"`
}

// MetadataOf returns p's metadata view. It shares p's labels and
// annotations.
func MetadataOf(p *Proc) PartialObjectMetadata {
	return PartialObjectMetadata{
		TypeMeta: TypeMeta{APIVersion: MetaGroupVersion, Kind: KindPartialObjectMetadata},
		Metadata: p.Metadata,
	}
}

// MetadataListOf returns the metadata view of l's items, under l's
// list metadata. It shares the items' labels and annotations.
func MetadataListOf(l *ProcList) PartialObjectMetadataList {
	out := PartialObjectMetadataList{
		TypeMeta: TypeMeta{APIVersion: MetaGroupVersion, Kind: KindPartialObjectMetadataList},
		Metadata: l.Metadata,
		Items:    make([]PartialObjectMetadata, len(l.Items)),
	}
	for i := range l.Items {
		out.Items[i] = MetadataOf(&l.Items[i])
	}
	return out
}

// MetadataWatchEvent is a line of a metadata-only watch: WatchEvent with
// the proc's metadata view as its object.
type MetadataWatchEvent struct {
	// type of the change.
	Type WatchEventType `json:"type"`
	// object is the metadata of the Proc after the change (before it,
	// for DELETED).
	Object PartialObjectMetadata `json:"object"`
}
