// Package fakecontrol is an in-process fake of procstar 0.7.5's control
// plane (the Python agent server Apsis embeds), for tests that drive a real
// procstar agent over a real WebSocket.
//
// It behaves as ../shared/reference/procstar-0.7.5-server.md describes:
// binary frames only; MessagePack maps with a "type" key; strict field sets
// for every agent message (an extra or missing key closes the connection;
// Register and ShutDown tolerate extra top-level keys, but Register's conn
// and proc maps are exact, and so is its resources map under the resources
// extension); a Register within RegisterTimeout; the access token;
// connections keyed by conn_id within groups, a reconnect reusing the
// connection and closing the old socket, a changed group rejected;
// reconciliation of Register.proc_ids; a reconnect timeout; ShutDown{done}
// dropping the connection for good; a uniformly random choice among a
// group's open, active connections for a start; and a first update after a
// start that must be a ProcResult. It can serve TLS with a self-signed
// certificate generated in process, and it echoes the Procstar-Extensions
// handshake header only for the extensions it was told to accept.
//
// Beyond the Python server it records every protocol violation it sees
// (Server.Violations), so a test can assert that an agent spoke the
// protocol exactly, and it can stall (stop answering pings) to exercise an
// agent's read timeout.
//
// A test typically does:
//
//	srv, _ := fakecontrol.New(fakecontrol.Options{Token: "t"})
//	defer srv.Close()
//	// run the agent with --agent-url srv.URL() --conn-id c1 ...
//	srv.WaitConn(ctx, "c1")
//	p, err := srv.Start(ctx, "default", "p1", spec) // p.First() is the first ProcResult
//	res, err := p.WaitState(ctx, "terminated")
//	data, err := p.FdData(ctx, "stdout", 0, nil)
//	err = p.Delete(ctx)
//	// and at the end: len(srv.Violations()) == 0
//
// It is a test peer: it keeps everything in memory, trusts its caller, and
// must not be used outside tests. It knows nothing of the agent's
// internals; it speaks only the wire protocol, with its own decoder, so that
// an encoding bug in package wire is not hidden by the same bug on both
// ends.
package fakecontrol
