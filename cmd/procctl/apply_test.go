package main

import (
	"os"
	"strings"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
)

// TestApplyDryRun: a dry run compares with the server's procs and says
// what apply would do, changing nothing.
func TestApplyDryRun(t *testing.T) {
	h := newHarness(t)
	file := h.write("p.yaml", twoYAML)
	check(t, h.run("apply", "-f", file, "--dry-run"), 0, "proc/hello created (dry run)\nproc/second created (dry run)\n", "")
	if h.srv.Proc("hello") != nil || len(h.srv.Applies()) != 0 {
		t.Fatal("--dry-run changed the server")
	}
	check(t, h.run("apply", "-f", file), 0, "proc/hello created\nproc/second created\n", "")
	applies := len(h.srv.Applies())

	check(t, h.run("apply", "-f", file, "--dry-run"), 0, "proc/hello unchanged (dry run)\nproc/second unchanged (dry run)\n", "")
	changed := h.write("c.yaml", strings.Replace(twoYAML, "hello]", "bye]", 1))
	check(t, h.run("apply", "-f", changed, "--dry-run"), 1, "proc/second unchanged (dry run)\n",
		`error: proc "hello" exists with a different spec, and a proc's spec is immutable: pass --force to delete and re-create it`+"\n")
	check(t, h.run("apply", "-f", changed, "--dry-run", "--force"), 0, "proc/hello configured (dry run)\nproc/second unchanged (dry run)\n", "")
	relabeled := h.write("l.yaml", strings.Replace(helloYAML, "app: hello", "app: other", 1))
	check(t, h.run("apply", "-f", relabeled, "--dry-run"), 0, "proc/hello configured (dry run)\n", "")
	if p := h.srv.Proc("hello"); p.Spec.Argv[1] != "hello" || p.Metadata.Labels["app"] != "hello" || len(h.srv.Applies()) != applies {
		t.Errorf("--dry-run changed the server: %+v", p)
	}
	// A proc being deleted is refused as apply refuses it.
	h.srv.Update("second", func(p *v1.Proc) { p.Metadata.DeletionTimestamp = p.Metadata.CreationTimestamp })
	check(t, h.run("apply", "-f", file, "--dry-run"), 1, "proc/hello unchanged (dry run)\n",
		`error: proc "second" is being deleted: wait for it to go and apply again, or pass --force`+"\n")
}

func readSample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../config/samples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestApplyPipeGroup: procs joined by a pipe are created with one request,
// applied one by one once they all exist, and refused when only some do.
func TestApplyPipeGroup(t *testing.T) {
	h := newHarness(t)
	sample := readSample(t, "pipeline.yaml")
	file := h.write("pipeline.yaml", twoYAML+"---\n"+sample)
	created := "proc/hello created\nproc/second created\nproc/pipeline-producer created\nproc/pipeline-consumer created\n"
	check(t, h.run("apply", "-f", file, "--dry-run"), 0, strings.ReplaceAll(created, "created", "created (dry run)"), "")
	check(t, h.run("apply", "-f", file), 0, created, "")
	if got := h.srv.Creates(); len(got) != 1 || strings.Join(got[0], ",") != "pipeline-producer,pipeline-consumer" {
		t.Errorf("server saw creates %v, want one batch of the pipe group", got)
	}
	if got := strings.Join(h.srv.Applies(), ","); got != "hello,second" {
		t.Errorf("server saw applies %s", got)
	}
	unchanged := strings.ReplaceAll(created, "created", "unchanged")
	check(t, h.run("apply", "-f", file), 0, unchanged, "")
	check(t, h.run("apply", "-f", file, "--dry-run"), 0, strings.ReplaceAll(unchanged, "unchanged", "unchanged (dry run)"), "")

	// --force cannot replace one end of a pipe.
	changed := h.write("changed.yaml", strings.Replace(sample, "[/usr/bin/wc, -c]", "[/usr/bin/wc, -l]", 1))
	refused := `error: procs "pipeline-producer" and "pipeline-consumer" are joined by pipes and "pipeline-consumer" changed: --force cannot replace part of a pipe group; delete them (procctl delete proc pipeline-producer pipeline-consumer) and apply again` + "\n"
	check(t, h.run("apply", "-f", changed, "--force"), 1, "", refused)
	check(t, h.run("apply", "-f", changed, "--force", "--dry-run"), 1, "", refused)
	check(t, h.run("apply", "-f", changed), 1, "proc/pipeline-producer unchanged\n",
		`error: proc "pipeline-consumer" exists with a different spec, and a proc's spec is immutable: pass --force to delete and re-create it`+"\n")

	// Only one end exists.
	h.srv.Remove("pipeline-consumer")
	partial := `error: procs "pipeline-producer" and "pipeline-consumer" are joined by pipes and must start together, but only "pipeline-producer" exists: delete it (procctl delete proc pipeline-producer) and apply again` + "\n"
	check(t, h.run("apply", "-f", file), 1, "proc/hello unchanged\nproc/second unchanged\n", partial)
	check(t, h.run("apply", "-f", file, "--dry-run"), 1, "proc/hello unchanged (dry run)\nproc/second unchanged (dry run)\n", partial)
	if h.srv.Proc("pipeline-consumer") != nil {
		t.Error("a refused group was created")
	}

	// create makes the group in one batch too, and says when one exists.
	h.srv.Remove("pipeline-producer")
	sampleFile := h.write("sample.yaml", sample)
	check(t, h.run("create", "-f", sampleFile), 0, "proc/pipeline-producer created\nproc/pipeline-consumer created\n", "")
	if got := h.srv.Creates(); len(got) != 2 || strings.Join(got[1], ",") != "pipeline-producer,pipeline-consumer" {
		t.Errorf("create: server saw %v", got)
	}
	r := h.run("create", "-f", sampleFile)
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, `error: procs "pipeline-producer" and "pipeline-consumer" (joined by pipes, created together) were not created: one exists already`) {
		t.Errorf("create of an existing group: %+v", r)
	}
	oneErrorLine(t, r)

	// A reader without its writer in the input: the server's refusal,
	// with what to do.
	h.srv.Remove("pipeline-producer")
	h.srv.Remove("pipeline-consumer")
	consumer := sample[strings.LastIndex(sample, "---"):]
	check(t, h.run("apply", "-f", h.write("consumer.yaml", consumer)), 1, "",
		`error: proc "pipeline-consumer" rejected by the server: unmatched read pipe: pipeline-producer stdout (procs joined by pipes must be applied together, from one input)`+"\n")
}

func TestPipeGroups(t *testing.T) {
	mk := func(name string, reads ...string) sourcedProc {
		p := v1.Proc{Metadata: v1.ObjectMeta{Name: name}}
		for _, r := range reads {
			p.Spec.Fds = append(p.Spec.Fds, v1.FdSpec{Fd: v1.Stdin, PipeRead: &v1.PipeReadFd{ProcID: r, Fd: v1.Stdout}})
		}
		return sourcedProc{proc: p}
	}
	// a → b → c joined transitively (c reads b, b reads a); d alone; e
	// reads a proc not in the input; f reads c.
	groups := pipeGroups([]sourcedProc{mk("c", "b"), mk("d"), mk("b", "a"), mk("e", "zz"), mk("a"), mk("f", "c")})
	var got []string
	for _, g := range groups {
		got = append(got, strings.Join(groupNames(g), "+"))
	}
	if s := strings.Join(got, " "); s != "c+b+a+f d e" {
		t.Errorf("groups %s", s)
	}
}
