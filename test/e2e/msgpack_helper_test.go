package e2e_test

import "github.com/vmihailenco/msgpack/v5"

// msgpackMarshal encodes a hand-made message, as a foreign server would.
func msgpackMarshal(v any) ([]byte, error) { return msgpack.Marshal(v) }
