// Package wire holds procstar 0.7.5's wire formats and their conversion to
// and from the procstar.dev/v1 object model:
//
//   - spec JSON ({"specs": {id: spec}}): ProcSpec and friends, DecodeSpecs
//     and EncodeSpecs;
//   - result JSON (ProcRes and its parts), NewProcRes and DecodeProcRes;
//   - the text encodings used for captured output: LossyUTF8 (Rust's
//     String::from_utf8_lossy), base64 and our Base2048;
//   - the agent protocol's messages (messages.go) and their MessagePack
//     codec: EncodeMessage, DecodeMessage, EchoRequest (msgpack.go). The Go
//     structs carry msgpack tags equal to their JSON names. The protocol
//     extensions beyond procstar 0.7.5 (push-status, push-output, labels, resources)
//     and their negotiation through the Procstar-Extensions handshake header
//     are described in extensions.md.
//
// Decoding is as strict as procstar's serde derive: field names are
// case-sensitive, unknown and duplicate fields are rejected, and nulls are
// accepted only where procstar has an Option, which may also be missing
// (serde reads a missing Option as None). Known procstar decoding bugs
// (signal bitmaps off by one bit, wrong tty minor, cguest_time in ticks,
// unnamed signals) are not copied; the format is kept.
//
// This package is pure: it must not do I/O, start processes or keep global
// mutable state, and it imports only the standard library, api/v1,
// internal/signals and vmihailenco/msgpack (for encoding).
package wire
