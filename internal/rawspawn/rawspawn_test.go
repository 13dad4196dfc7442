package rawspawn

import "testing"

func TestRun(t *testing.T) {
	if err := Run("/bin/true", nil); err != nil {
		t.Fatalf("/bin/true: %v", err)
	}
	if err := Run("/bin/false", nil); err == nil {
		t.Fatal("/bin/false reported success")
	}
	if err := Run("/nonexistent", nil); err == nil {
		t.Fatal("a missing program reported success")
	}
}
