package v1

// OutputInfo describes one captured fd of a proc, for reading its log.
type OutputInfo struct {
	// length is how many bytes have been captured so far.
	Length int64 `json:"length"`
	// encoding of the output in results.
	Encoding Encoding `json:"encoding"`
	// complete is true when the proc is done and its capture drained:
	// length is final.
	Complete bool `json:"complete"`
}
