package sandboxd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	sandboxv1 "sandboxd.dev/gen/go/sandbox/v1"
)

// State is a sandbox's life-cycle state.
type State string

const (
	StateCreating   State = "creating"
	StateRunning    State = "running"
	StateDestroying State = "destroying"
	StateStopped    State = "stopped"
	StateUnknown    State = "unknown"
)

// Resources are a sandbox's CPU cores, memory (MiB) and disk (GiB).
type Resources struct {
	Cores     uint32
	MemoryMiB uint32
	DiskGiB   uint32
}

// Info describes a sandbox as the server reported it.
type Info struct {
	ID              string
	State           State
	Labels          map[string]string
	Resources       Resources
	InternetAccess  bool
	LeaseExpiresAt  time.Time
	CreatedAt       time.Time
	Provider        string
	Tenant          string
	EgressAllowlist []string
}

func infoFrom(p *sandboxv1.Sandbox) Info {
	st := StateUnknown
	switch p.GetState() {
	case sandboxv1.Sandbox_STATE_CREATING:
		st = StateCreating
	case sandboxv1.Sandbox_STATE_RUNNING:
		st = StateRunning
	case sandboxv1.Sandbox_STATE_DESTROYING:
		st = StateDestroying
	case sandboxv1.Sandbox_STATE_STOPPED:
		st = StateStopped
	}
	i := Info{
		ID: p.GetId(), State: st, Labels: p.GetLabels(),
		Resources:      Resources{Cores: p.GetResources().GetCores(), MemoryMiB: p.GetResources().GetMemoryMib(), DiskGiB: p.GetResources().GetDiskGib()},
		InternetAccess: p.GetInternetAccess(), Provider: p.GetProvider(), Tenant: p.GetTenant(),
		EgressAllowlist: p.GetEgressAllowlist(),
	}
	if p.LeaseExpiresAt != nil {
		i.LeaseExpiresAt = p.LeaseExpiresAt.AsTime()
	}
	if p.CreatedAt != nil {
		i.CreatedAt = p.CreatedAt.AsTime()
	}
	return i
}

// CreateOptions describe a new sandbox. Zero fields take the server's defaults.
type CreateOptions struct {
	Resources      Resources
	InternetAccess bool
	Labels         map[string]string
	// LeaseTTL is how long the sandbox lives without renewal (0: the
	// server's default). The library renews it every LeaseTTL/3 while the
	// Sandbox is open.
	LeaseTTL time.Duration
	// RequestID makes the create idempotent; when empty a random one is
	// made. Every retry of this Create reuses it.
	RequestID string
	// OnLeaseError is called (from the renewal goroutine) when a renewal
	// fails; the renewal is tried again at the next tick. See also
	// Sandbox.LeaseErr.
	OnLeaseError func(error)
	// NoKeepAlive leaves the lease alone: no background renewal.
	NoKeepAlive bool
}

// Sandbox is a handle on one sandbox. Close destroys it; Detach forgets it
// and leaves it to its lease. Methods are safe for concurrent use.
type Sandbox struct {
	// ID is the sandbox's server-assigned id.
	ID string
	c  *Client

	mu       sync.Mutex
	info     Info
	leaseErr error
	stop     chan struct{}
	done     chan struct{}
	closed   bool
	errs     chan error
	onErr    func(error)
}

// Create makes a sandbox and starts renewing its lease. CreateSandbox is
// retried on UNAVAILABLE with the same request id, so a retry never makes a
// second sandbox.
func (c *Client) Create(ctx context.Context, o CreateOptions) (*Sandbox, error) {
	rid := o.RequestID
	if rid == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		rid = "go-" + hex.EncodeToString(b[:])
	}
	req := &sandboxv1.CreateSandboxRequest{
		Resources:      &sandboxv1.Resources{Cores: o.Resources.Cores, MemoryMib: o.Resources.MemoryMiB, DiskGib: o.Resources.DiskGiB},
		InternetAccess: o.InternetAccess,
		Labels:         o.Labels,
		RequestId:      rid,
	}
	if o.LeaseTTL > 0 {
		req.LeaseTtl = durationpb.New(o.LeaseTTL)
	}
	var resp *sandboxv1.CreateSandboxResponse
	if _, ok := ctx.Deadline(); !ok && c.opts.callTimeout > 0 {
		// Making a sandbox can take long on some providers: at least 10 minutes.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max(c.opts.callTimeout, 10*time.Minute))
		defer cancel()
	}
	err := c.unary(ctx, func(ctx context.Context) (err error) {
		resp, err = c.rpc.CreateSandbox(ctx, req)
		return err
	})
	if err != nil {
		return nil, withOp(err, "CreateSandbox")
	}
	sb := c.handle(infoFrom(resp.GetSandbox()), o.OnLeaseError)
	if !o.NoKeepAlive {
		ttl := o.LeaseTTL
		if ttl <= 0 {
			// The server's default: estimate it from the expiry.
			ttl = time.Until(sb.info.LeaseExpiresAt)
		}
		sb.StartKeepAlive(ttl)
	}
	return sb, nil
}

func (c *Client) handle(info Info, onErr func(error)) *Sandbox {
	return &Sandbox{ID: info.ID, c: c, info: info, errs: make(chan error, 1), onErr: onErr}
}

// Get returns a handle on an existing sandbox (ErrNotFound when it does not
// exist). The handle does not renew the lease until StartKeepAlive; Close
// destroys the sandbox, Detach only forgets the handle.
func (c *Client) Get(ctx context.Context, id string) (*Sandbox, error) {
	info, err := c.Info(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.handle(info, nil), nil
}

// Info describes a sandbox (GetSandbox).
func (c *Client) Info(ctx context.Context, id string) (Info, error) {
	var resp *sandboxv1.GetSandboxResponse
	err := c.unary(ctx, func(ctx context.Context) (err error) {
		resp, err = c.rpc.GetSandbox(ctx, &sandboxv1.GetSandboxRequest{SandboxId: id})
		return err
	})
	if err != nil {
		return Info{}, withOp(err, "GetSandbox")
	}
	return infoFrom(resp.GetSandbox()), nil
}

// List returns the sandboxes carrying all the given labels (nil: all),
// oldest first, reading every page.
func (c *Client) List(ctx context.Context, labels map[string]string) ([]Info, error) {
	var out []Info
	token := ""
	for {
		var resp *sandboxv1.ListSandboxesResponse
		err := c.unary(ctx, func(ctx context.Context) (err error) {
			resp, err = c.rpc.ListSandboxes(ctx, &sandboxv1.ListSandboxesRequest{LabelSelector: labels, PageSize: 1000, PageToken: token})
			return err
		})
		if err != nil {
			return nil, withOp(err, "ListSandboxes")
		}
		for _, s := range resp.GetSandboxes() {
			out = append(out, infoFrom(s))
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// Destroy destroys a sandbox by id; destroying one already gone succeeds.
func (c *Client) Destroy(ctx context.Context, id string) error {
	return withOp(c.unary(ctx, func(ctx context.Context) error {
		_, err := c.rpc.DestroySandbox(ctx, &sandboxv1.DestroySandboxRequest{SandboxId: id})
		return err
	}), "DestroySandbox")
}

// KeepAlive renews a sandbox's lease: it runs at least ttl from now (0 keeps
// the current TTL). It returns the new expiry.
func (c *Client) KeepAlive(ctx context.Context, id string, ttl time.Duration) (time.Time, error) {
	req := &sandboxv1.KeepAliveRequest{SandboxId: id}
	if ttl > 0 {
		req.LeaseTtl = durationpb.New(ttl)
	}
	var resp *sandboxv1.KeepAliveResponse
	err := c.unary(ctx, func(ctx context.Context) (err error) {
		resp, err = c.rpc.KeepAlive(ctx, req)
		return err
	})
	if err != nil {
		return time.Time{}, withOp(err, "KeepAlive")
	}
	return resp.GetLeaseExpiresAt().AsTime(), nil
}

// Info returns what is known of the sandbox (as of create, Get or Refresh).
func (s *Sandbox) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// Refresh reads the sandbox's current description from the server.
func (s *Sandbox) Refresh(ctx context.Context) (Info, error) {
	info, err := s.c.Info(ctx, s.ID)
	if err == nil {
		s.mu.Lock()
		s.info = info
		s.mu.Unlock()
	}
	return info, err
}

// KeepAlive renews the lease once (see Client.KeepAlive).
func (s *Sandbox) KeepAlive(ctx context.Context, ttl time.Duration) (time.Time, error) {
	t, err := s.c.KeepAlive(ctx, s.ID, ttl)
	if err == nil {
		s.mu.Lock()
		s.info.LeaseExpiresAt = t
		s.mu.Unlock()
	}
	return t, err
}

// StartKeepAlive renews the lease with this TTL every ttl/3 in the
// background until Close or Detach. A failed renewal is reported (LeaseErr,
// LeaseErrors, OnLeaseError) and tried again at the next tick; renewal stops
// for good when the sandbox is gone (NOT_FOUND, or FAILED_PRECONDITION: the
// lease ran out). Calling it again while running does nothing.
func (s *Sandbox) StartKeepAlive(ttl time.Duration) {
	if ttl <= 0 {
		ttl = time.Minute
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil || s.closed {
		return
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.renew(ttl, s.stop, s.done)
}

func (s *Sandbox) renew(ttl time.Duration, stop, done chan struct{}) {
	defer close(done)
	every := max(ttl/3, 100*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		// Retry UNAVAILABLE until shortly before the next tick.
		cctx, ccancel := context.WithTimeout(ctx, every)
		_, err := s.KeepAlive(cctx, ttl)
		ccancel()
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.leaseErr = err
		onErr := s.onErr
		s.mu.Unlock()
		if err == nil {
			continue
		}
		if onErr != nil {
			onErr(err)
		}
		select { // keep only the newest error in the channel
		case s.errs <- err:
		default:
			select {
			case <-s.errs:
			default:
			}
			select {
			case s.errs <- err:
			default:
			}
		}
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrFailedPrecondition) {
			return
		}
	}
}

// LeaseErr returns the error of the last lease renewal, nil when it
// succeeded (or none was made yet).
func (s *Sandbox) LeaseErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaseErr
}

// LeaseErrors delivers failed renewals (it holds the newest one when nobody
// reads).
func (s *Sandbox) LeaseErrors() <-chan error { return s.errs }

// stopRenewing ends the renewal goroutine and waits for it.
func (s *Sandbox) stopRenewing() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop = nil
	s.closed = true
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// Detach stops renewing the lease and leaves the sandbox to it: it is
// destroyed when the lease runs out, unless someone else renews it.
func (s *Sandbox) Detach() { s.stopRenewing() }

// Close stops renewing the lease and destroys the sandbox (retrying
// UNAVAILABLE for up to a minute). It is safe to call more than once.
func (s *Sandbox) Close() error {
	s.stopRenewing()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.Destroy(ctx)
}

// Destroy destroys the sandbox now (with ctx) and stops the renewal.
func (s *Sandbox) Destroy(ctx context.Context) error {
	s.stopRenewing()
	return s.c.Destroy(ctx, s.ID)
}

// SetInternetAccess grants or cuts the sandbox's access beyond its host.
func (s *Sandbox) SetInternetAccess(ctx context.Context, enabled bool) error {
	return withOp(s.c.unary(ctx, func(ctx context.Context) error {
		_, err := s.c.rpc.SetInternetAccess(ctx, &sandboxv1.SetInternetAccessRequest{SandboxId: s.ID, Enabled: enabled})
		return err
	}), "SetInternetAccess")
}

// SetEgressAllowlist replaces the sandbox's egress allowlist.
func (s *Sandbox) SetEgressAllowlist(ctx context.Context, entries []string) error {
	return withOp(s.c.unary(ctx, func(ctx context.Context) error {
		_, err := s.c.rpc.SetEgressAllowlist(ctx, &sandboxv1.SetEgressAllowlistRequest{SandboxId: s.ID, Entries: entries})
		return err
	}), "SetEgressAllowlist")
}

// Handle returns a handle on the sandbox id without asking the server (the
// first call on it reports ErrNotFound if it does not exist) and without
// renewing its lease. Close destroys the sandbox; Detach forgets the handle.
func (c *Client) Handle(id string) *Sandbox {
	return c.handle(Info{ID: id}, nil)
}
