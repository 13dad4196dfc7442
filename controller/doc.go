// Package controller is the node's level-based proc controller and its
// in-memory proc table with a watch.
//
// It keeps the desired Procs (spec plus deletion intent), runs one worker
// goroutine per proc that converges the runtime towards them (start,
// timeout, restart with backoff, graceful stop, removal), and publishes
// each change as a new resourceVersion into a bounded history ring that
// List and Watch serve. Its methods are the Backend the REST layer
// (package restapi) and the agent call.
//
// It holds no Linux mechanics: everything about processes goes through the
// small Runtime and Process interfaces declared here, which
// FromRuntime adapts from *runtime.Runtime. It must not wait on children,
// open /proc or speak any wire format other than building wire.ProcRes
// results; nor may it do work proportional to the number of procs on
// each change (only List, Results and the shutdown helpers scan the table).
//
// Errors carry the classes of internal/errdefs so that each edge maps them
// to its codes once.
package controller
