package v1

import (
	"errors"
	"testing"
)

func TestRestartPolicy(t *testing.T) {
	pipe := []FdSpec{{Fd: "stdout", PipeWrite: &PipeWriteFd{}}}
	tests := []struct {
		policy RestartPolicy
		fds    []FdSpec
		want   string // "" when valid
	}{
		{"", nil, ""},
		{RestartNever, nil, ""},
		{RestartOnFailure, nil, ""},
		{RestartAlways, nil, ""},
		{RestartNever, pipe, ""},
		{"Sometimes", nil, `spec.restartPolicy: must be Never, OnFailure or Always, not "Sometimes"`},
		{"never", nil, `spec.restartPolicy: must be Never, OnFailure or Always, not "never"`},
		{RestartAlways, pipe, "spec.restartPolicy: must be Never for a proc with pipe fds (stdout is a pipe), since a batch cannot be restarted piecemeal"},
		{RestartOnFailure, []FdSpec{{Fd: "stdin", PipeRead: &PipeReadFd{ProcID: "w", Fd: "stdout"}}}, "spec.restartPolicy: must be Never for a proc with pipe fds (stdin is a pipe), since a batch cannot be restarted piecemeal"},
	}
	for _, tt := range tests {
		p := validProc()
		p.Spec.RestartPolicy = tt.policy
		p.Spec.Fds = tt.fds
		err := p.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.policy, err)
		case tt.want != "" && (err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalid)):
			t.Errorf("%q: got %v, want %s", tt.policy, err, tt.want)
		}
	}
}

func TestRestartPolicyDefault(t *testing.T) {
	p := validProc()
	p.SetDefaults()
	if p.Spec.RestartPolicy != RestartNever {
		t.Errorf("default restartPolicy = %q", p.Spec.RestartPolicy)
	}
	p.Spec.RestartPolicy = RestartAlways
	p.SetDefaults()
	if p.Spec.RestartPolicy != RestartAlways {
		t.Errorf("SetDefaults changed a set restartPolicy to %q", p.Spec.RestartPolicy)
	}
}
