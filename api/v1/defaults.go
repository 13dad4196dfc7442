package v1

// Default values SetDefaults fills in.
const (
	// DefaultFileMode is the permission of a file an fd creates, before
	// the umask.
	DefaultFileMode uint32 = 0o666
	// DefaultTimeoutSignal is the first signal a timeout sends.
	DefaultTimeoutSignal Signal = "SIGTERM"
	// DefaultGracePeriodSeconds is the wait between a timeout's signal and
	// SIGKILL.
	DefaultGracePeriodSeconds float64 = 30
	// DefaultPlacementGroup is the agent group of a proc that names none.
	DefaultPlacementGroup = "default"
)

// SetDefaults fills in apiVersion, kind and the spec's defaults. It is
// idempotent and never changes a value that is set.
func (p *Proc) SetDefaults() {
	if p.APIVersion == "" {
		p.APIVersion = APIVersion
	}
	if p.Kind == "" {
		p.Kind = KindProc
	}
	p.Spec.SetDefaults()
}

// SetDefaults fills in apiVersion, kind and every item's defaults.
func (l *ProcList) SetDefaults() {
	if l.APIVersion == "" {
		l.APIVersion = APIVersion
	}
	if l.Kind == "" {
		l.Kind = KindProcList
	}
	for i := range l.Items {
		l.Items[i].SetDefaults()
	}
}

// SetDefaults fills in procstar's documented defaults: env.inherit true;
// for captures mode tempfile, encoding base64 and attached true; flags
// Default for null and file fds; file mode 0666; closeOtherFds true; for a
// timeout signal SIGTERM and a 30 s grace period; restartPolicy Never; placement group
// "default". It is idempotent and never changes a value that is set.
func (s *ProcSpec) SetDefaults() {
	if s.Env.Inherit == nil {
		s.Env.Inherit = &EnvInherit{All: true}
	}
	for i := range s.Fds {
		s.Fds[i].SetDefaults()
	}
	if s.CloseOtherFds == nil {
		s.CloseOtherFds = ptrTo(true)
	}
	if t := s.Timeout; t != nil {
		if t.Signal == "" {
			t.Signal = DefaultTimeoutSignal
		}
		if t.GracePeriodSeconds == nil {
			t.GracePeriodSeconds = ptrTo(DefaultGracePeriodSeconds)
		}
	}
	if s.RestartPolicy == "" {
		s.RestartPolicy = RestartNever
	}
	if pl := s.Placement; pl != nil && pl.Group == "" {
		pl.Group = DefaultPlacementGroup
	}
}

// SetDefaults fills in the defaults of whichever variant f has.
func (f *FdSpec) SetDefaults() {
	if n := f.Null; n != nil && n.Flags == "" {
		n.Flags = OpenDefault
	}
	if fl := f.File; fl != nil {
		if fl.Flags == "" {
			fl.Flags = OpenDefault
		}
		if fl.Mode == nil {
			fl.Mode = ptrTo(DefaultFileMode)
		}
	}
	if c := f.Capture; c != nil {
		if c.Mode == "" {
			c.Mode = CaptureTempfile
		}
		if c.Encoding == "" {
			c.Encoding = EncodingBase64
		}
		if c.Attached == nil {
			c.Attached = ptrTo(true)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
