// Package deribit adapts a zenws client to Deribit's JSON-RPC WebSocket API:
// authentication (client_credentials or client_signature), token refresh
// before the token expires, cancel-on-disconnect, public/set_heartbeat, and
// on every connection, in this order: authenticate, arm
// cancel-on-disconnect, arm the heartbeat, after a reconnect backfill the
// trades and open orders missed (orders.go, backfill.go), then re-subscribe
// (the client's restore, which runs after its connect hooks).
//
// A Session holds one client's authentication. A token belongs to the
// connection it was issued on and ends with it: while the client has no
// connection, and on a new one until it has authenticated, the session is
// not authenticated. Connect creates both; with a
// supervisor, create a Session per client and pass its Options:
//
//	s, err := deribit.NewSession(deribit.Config{ClientID: id, ClientSecret: secret})
//	c, err := sup.StartClient(ctx, deribit.Testnet, s.Options()...)
//
// Credentials, signatures and tokens never reach the logs, and session
// recordings redact them.
package deribit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/pidname"
)

// Deribit's WebSocket endpoints. Tests never dial them; they are for users.
const (
	Mainnet = "wss://www.deribit.com/ws/api/v2"
	Testnet = "wss://test.deribit.com/ws/api/v2"
)

// Deribit error codes the adapter acts on.
const (
	CodeInvalidCredentials = 13004 // wrong client id, secret or signature: fatal
	CodeUnauthorized       = 13009 // a private method without (or with an expired) token
	CodeTooManyRequests    = 10028 // credits ran out; Deribit closes the session
)

// MinHeartbeat is the shortest interval public/set_heartbeat accepts.
const MinHeartbeat = 10 * time.Second

// Bounds on the token lifetime a venue reports (expires_in): it is not
// trusted beyond them, so that a tiny, huge or overflowing value cannot
// make the session refresh in a loop. Deribit's tokens live 900 s.
const (
	// DefaultMinRefresh is the default Config.MinRefresh: the shortest time
	// from a grant to the refresh it schedules, whatever expires_in says.
	DefaultMinRefresh = 10 * time.Second
	// MinMinRefresh is the lowest Config.MinRefresh accepted (for tests
	// against a simulator with short token lives): at most ten public/auth
	// a second per connection, whatever the venue says.
	MinMinRefresh = 100 * time.Millisecond
	// MaxTokenLifetime caps expires_in (a year): a larger value, or one
	// that would overflow a time.Duration, is taken as this.
	MaxTokenLifetime = 365 * 24 * time.Hour
)

// Grant is how the session authenticates.
type Grant int

const (
	// ClientCredentials sends the client id and secret.
	ClientCredentials Grant = iota
	// ClientSignature sends an HMAC-SHA256 signature made with the secret,
	// which itself never leaves the process.
	ClientSignature
)

// String names the grant as Deribit's grant_type does.
func (g Grant) String() string {
	switch g {
	case ClientCredentials:
		return "client_credentials"
	case ClientSignature:
		return "client_signature"
	}
	return "Grant(" + strconv.Itoa(int(g)) + ")"
}

// Config configures a Session. Without a ClientID the session only arms the
// heartbeat (public data needs no authentication).
type Config struct {
	ClientID     string
	ClientSecret string
	Grant        Grant
	// Scope is passed to public/auth when set (for example
	// "session:trading"); empty asks for Deribit's default.
	Scope string
	// Heartbeat is the interval given to public/set_heartbeat and used for
	// the client's own Deribit heartbeat; default and minimum MinHeartbeat.
	// Tests against a simulator may set less (AllowShortHeartbeat).
	Heartbeat           time.Duration
	AllowShortHeartbeat bool
	// RefreshAt is the fraction of expires_in after which the token is
	// refreshed; default 0.8.
	RefreshAt float64
	Logger    *zap.Logger
	// MinRefresh is the shortest time from a grant to its refresh, and
	// between two refresh attempts, whatever expires_in says: a shorter
	// refresh is clamped to it, counted (Stats.Clamped) and logged. Default
	// DefaultMinRefresh (10 s); at least MinMinRefresh.
	MinRefresh time.Duration
	// DisableCancelOnDisconnect turns off cancel-on-disconnect: by default
	// a session with credentials arms it on every connection, and
	// Session.Order refuses to send where it is not armed (see orders.go).
	DisableCancelOnDisconnect bool
	// DisableBackfill turns off the backfill after a reconnect (see
	// backfill.go); by default on with credentials.
	DisableBackfill bool
	// BackfillPages bounds the trade pages fetched per user.trades channel
	// in one backfill; default DefaultBackfillPages, in [1, 1000].
	BackfillPages int
	// BackfillPageSize is the count asked per page; default
	// DefaultBackfillPageSize, in [1, 1000] (Deribit's maximum).
	BackfillPageSize int
	// BackfillHold bounds the live user.* notifications held while the
	// backfill runs (see backfill.go); past it they are dropped and the
	// backfill reported incomplete (BackfillHoldOverflow). Default
	// actors.DefaultHoldMessages; not negative. Their bytes are bounded by
	// actors.DefaultHoldBytes.
	BackfillHold int
}

// Session authenticates one client on every connection and keeps each
// connection's token fresh on that connection. It is safe for concurrent
// use.
type Session struct {
	cfg Config
	log *zap.Logger

	mu     sync.Mutex
	owner  *actor.PID
	client *actors.Client
	conns  map[uint64]*connAuth // by connection generation, while that connection is open
	closed bool
	stop   chan struct{} // closed by Close: ends the watchers of open connections

	marks        marks          // the newest trade the handler was given, per user.trades channel
	since        time.Time      // when a connection first got through the hook (zero: none yet)
	lastBackfill BackfillReport // the latest backfill's

	auths, refreshes, refreshFailures, clamped        atomic.Uint64
	arms, backfills, backfilledTrades, backfillErrors atomic.Uint64
}

// connAuth is one connection's authentication: Deribit tokens belong to
// the connection they were issued on.
type connAuth struct {
	setup   *actors.Setup // talks on that connection only
	access  string
	refresh string
	expires time.Time
	timer   *time.Timer
	armed   bool // cancel-on-disconnect is armed on the connection
}

// Stats counts a Session's authentications.
type Stats struct {
	Auths           uint64 // successful public/auth with the credentials (one per connection)
	Refreshes       uint64 // successful refresh_token grants
	RefreshFailures uint64
	// Clamped counts grants whose expires_in was outside sane bounds (a
	// refresh sooner than MinRefresh, a life over MaxTokenLifetime).
	Clamped uint64
	// Arms counts connections on which cancel-on-disconnect was armed.
	Arms uint64
	// Backfills counts the backfills made after reconnects (complete or
	// not), BackfilledTrades the trades they delivered, BackfillErrors
	// those that stopped short (Session.LastBackfill says why).
	Backfills, BackfilledTrades, BackfillErrors uint64
}

// NewSession validates cfg and returns a Session for one client.
func NewSession(cfg Config) (*Session, error) {
	if cfg.ClientSecret != "" && cfg.ClientID == "" {
		return nil, errors.New("zenws/deribit: ClientSecret without ClientID")
	}
	if cfg.ClientID != "" && cfg.ClientSecret == "" {
		return nil, errors.New("zenws/deribit: ClientID without ClientSecret")
	}
	if cfg.Grant != ClientCredentials && cfg.Grant != ClientSignature {
		return nil, fmt.Errorf("zenws/deribit: unknown grant %d", int(cfg.Grant))
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = MinHeartbeat
	}
	if cfg.Heartbeat < 0 || (cfg.Heartbeat < MinHeartbeat && !cfg.AllowShortHeartbeat) {
		return nil, fmt.Errorf("zenws/deribit: Heartbeat %v: Deribit accepts %v or more", cfg.Heartbeat, MinHeartbeat)
	}
	if cfg.RefreshAt == 0 {
		cfg.RefreshAt = 0.8
	}
	if !(cfg.RefreshAt > 0 && cfg.RefreshAt < 1) {
		return nil, fmt.Errorf("zenws/deribit: RefreshAt %v: must be in (0, 1)", cfg.RefreshAt)
	}
	if cfg.MinRefresh == 0 {
		cfg.MinRefresh = DefaultMinRefresh
	}
	if cfg.MinRefresh < MinMinRefresh {
		return nil, fmt.Errorf("zenws/deribit: MinRefresh %v: must be at least %v", cfg.MinRefresh, MinMinRefresh)
	}
	if cfg.BackfillPages == 0 {
		cfg.BackfillPages = DefaultBackfillPages
	}
	if cfg.BackfillPageSize == 0 {
		cfg.BackfillPageSize = DefaultBackfillPageSize
	}
	if cfg.BackfillHold < 0 {
		return nil, fmt.Errorf("zenws/deribit: BackfillHold %d: must not be negative", cfg.BackfillHold)
	}
	if cfg.BackfillPages < 1 || cfg.BackfillPages > 1000 || cfg.BackfillPageSize < 1 || cfg.BackfillPageSize > 1000 {
		return nil, fmt.Errorf("zenws/deribit: BackfillPages %d, BackfillPageSize %d: each must be in [1, 1000]", cfg.BackfillPages, cfg.BackfillPageSize)
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Session{cfg: cfg, log: log.With(zap.String("adapter", "deribit")), conns: map[uint64]*connAuth{}, stop: make(chan struct{})}, nil
}

// Options returns the client options that make a client use this session:
// the Deribit heartbeat and subscription dialect (with an observer of the
// user.trades channels, for the backfill), and the connect hook that
// authenticates, arms cancel-on-disconnect and the heartbeat on every
// connection and backfills after a reconnect. Options given after them
// override them (a WithVenue after them loses the backfill's marks).
func (s *Session) Options() []actors.Option {
	return []actors.Option{
		actors.WithHeartbeat(actors.HeartbeatDeribit, s.cfg.Heartbeat),
		actors.WithVenue(&observingVenue{s: s}),
		actors.WithConnectHook(s.connectHook),
		actors.WithSecrets(s.cfg.ClientSecret), // hidden from the client's logs, errors and recordings
	}
}

// Connect creates a Session for cfg and connects a client to url with it.
func Connect(ctx context.Context, sys *actor.ActorSystem, url string, cfg Config, opts ...actors.Option) (*actors.Client, *Session, error) {
	s, err := NewSession(cfg)
	if err != nil {
		return nil, nil, err
	}
	c, err := actors.Connect(ctx, sys, url, append(s.Options(), opts...)...)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return c, s, nil
}

// Authenticated reports whether the client's current connection holds a
// token that has not expired: false while the client has no connection
// (connecting, reconnecting, stopped), and on a new connection until it
// has authenticated.
func (s *Session) Authenticated() bool {
	return time.Now().Before(s.Expires())
}

// Expires is when the current connection's token expires (zero without
// a connection or a token).
func (s *Session) Expires() time.Time {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil {
		return time.Time{}
	}
	gen := c.Health().Generation
	s.mu.Lock()
	defer s.mu.Unlock()
	if ca := s.conns[gen]; ca != nil && ca.access != "" && !ended(ca.setup) {
		return ca.expires
	}
	return time.Time{}
}

// ended reports whether setup's connection has ended (its watcher may not
// have forgotten it yet).
func ended(setup *actors.Setup) bool {
	select {
	case <-setup.Done():
		return true
	default:
		return false
	}
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	return Stats{Auths: s.auths.Load(), Refreshes: s.refreshes.Load(), RefreshFailures: s.refreshFailures.Load(), Clamped: s.clamped.Load(),
		Arms: s.arms.Load(), Backfills: s.backfills.Load(), BackfilledTrades: s.backfilledTrades.Load(), BackfillErrors: s.backfillErrors.Load()}
}

// Close stops the token refresh. The client keeps running; close it with
// its own Close.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		close(s.stop)
	}
	s.closed = true
	for gen, ca := range s.conns {
		if ca.timer != nil {
			ca.timer.Stop()
		}
		delete(s.conns, gen)
	}
}

// connectHook runs on every new connection: authenticate and arm
// cancel-on-disconnect (when there are credentials), arm the server's
// heartbeat, then after a reconnect backfill what was missed.
func (s *Session) connectHook(ctx context.Context, setup *actors.Setup) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return actors.Fatal(errors.New("zenws/deribit: session closed"))
	case s.owner == nil:
		s.owner, s.client = setup.Client().PID(), setup.Client()
	case !s.owner.Equal(setup.Client().PID()):
		s.mu.Unlock()
		return actors.Fatal(fmt.Errorf("zenws/deribit: session belongs to client %s, not %s: create one Session per client", pidname.String(s.owner), pidname.String(setup.Client().PID())))
	}
	s.mu.Unlock()
	if s.cfg.ClientID != "" {
		// Debug lines name the grant and the connection, never a credential or token.
		s.log.Debug("authenticating", pidname.Field("client", setup.Client().PID()), zap.Uint64("generation", setup.Generation()), zap.Stringer("grant", s.cfg.Grant))
		res, err := setup.Call(ctx, "public/auth", s.credentials())
		if err != nil {
			var rpc *actors.RPCError
			if errors.As(err, &rpc) && rpc.Code == CodeInvalidCredentials {
				return actors.Fatal(fmt.Errorf("zenws/deribit: public/auth refused the credentials of %q: %w", s.cfg.ClientID, err))
			}
			return fmt.Errorf("zenws/deribit: public/auth: %w", err)
		}
		if err := s.store(setup, res); err != nil {
			return err
		}
		s.auths.Add(1)
		if s.armOn() {
			if err := s.arm(ctx, setup); err != nil {
				return err
			}
		}
	}
	secs := math.Ceil(s.cfg.Heartbeat.Seconds())
	if s.cfg.AllowShortHeartbeat {
		secs = s.cfg.Heartbeat.Seconds() // a simulator takes fractions
	}
	if _, err := setup.Call(ctx, "public/set_heartbeat", map[string]float64{"interval": secs}); err != nil {
		return fmt.Errorf("zenws/deribit: public/set_heartbeat: %w", err)
	}
	if s.backfillOn(setup) {
		// The user channels' live notifications wait for the backfill,
		// which runs once they are subscribed again (backfill.go).
		hold := setup.Hold("user.", s.cfg.BackfillHold, 0)
		setup.AfterRestore(func(ctx context.Context, setup *actors.Setup) error { return s.backfill(ctx, setup, hold) })
	}
	s.mu.Lock()
	if s.since.IsZero() {
		s.since = time.Now()
	}
	s.mu.Unlock()
	return nil
}

// credentials are the public/auth params of the configured grant.
func (s *Session) credentials() map[string]any {
	p := map[string]any{"grant_type": s.cfg.Grant.String(), "client_id": s.cfg.ClientID}
	if s.cfg.Scope != "" {
		p["scope"] = s.cfg.Scope
	}
	if s.cfg.Grant == ClientCredentials {
		p["client_secret"] = s.cfg.ClientSecret
		return p
	}
	ts := time.Now().UnixMilli()
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	nonce := hex.EncodeToString(raw[:])
	p["timestamp"] = ts
	p["nonce"] = nonce
	p["data"] = ""
	p["signature"] = Sign(s.cfg.ClientSecret, ts, nonce, "")
	return p
}

// Sign returns Deribit's client_signature: the lowercase hex HMAC-SHA256,
// keyed with secret, of timestamp + "\n" + nonce + "\n" + data.
func Sign(secret string, timestampMillis int64, nonce, data string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestampMillis, 10) + "\n" + nonce + "\n" + data))
	return hex.EncodeToString(m.Sum(nil))
}

type authResult struct {
	AccessToken  string  `json:"access_token"`
	RefreshToken string  `json:"refresh_token"`
	ExpiresIn    float64 `json:"expires_in"`
}

// store keeps a public/auth result for the connection setup talks on and
// schedules its refresh.
func (s *Session) store(setup *actors.Setup, res json.RawMessage) error {
	var r authResult
	if err := json.Unmarshal(res, &r); err != nil || r.AccessToken == "" || !(r.ExpiresIn > 0) {
		return errors.New("zenws/deribit: public/auth result without access_token and a positive expires_in")
	}
	setup.AddSecrets(r.AccessToken, r.RefreshToken)
	life, refresh := s.refreshPlan(r.ExpiresIn)
	gen := setup.Generation()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return actors.Fatal(errors.New("zenws/deribit: session closed"))
	case ended(setup): // nothing to keep: the token ended with its connection
		return fmt.Errorf("zenws/deribit: the connection ended while authenticating: %w", actors.ErrNotConnected)
	}
	ca := s.conns[gen]
	if ca == nil {
		ca = &connAuth{}
		s.conns[gen] = ca
		go s.watch(gen, setup)
	}
	ca.setup, ca.access, ca.refresh, ca.expires = setup, r.AccessToken, r.RefreshToken, time.Now().Add(life)
	s.scheduleLocked(gen, ca, refresh)
	s.log.Debug("authenticated", pidname.Field("client", setup.Client().PID()), zap.Uint64("generation", gen),
		zap.Duration("token_life", life), zap.Duration("refresh_in", refresh), zap.Bool("refresh_token", r.RefreshToken != ""))
	return nil
}

// refreshPlan turns a venue's expires_in (seconds, > 0) into the token's
// life and the wait before its refresh, within sane bounds: the life at
// most MaxTokenLifetime (computed in float64, so that a huge value cannot
// overflow into a negative duration), the refresh no sooner than
// MinRefresh. A clamp is counted and logged.
func (s *Session) refreshPlan(expiresIn float64) (life, refresh time.Duration) {
	clamped := false
	secs := expiresIn
	if math.IsInf(secs, 0) || math.IsNaN(secs) || secs > MaxTokenLifetime.Seconds() {
		secs, clamped = MaxTokenLifetime.Seconds(), true
	}
	life = time.Duration(secs * float64(time.Second))
	refresh = time.Duration(float64(life) * s.cfg.RefreshAt)
	if refresh < s.cfg.MinRefresh {
		refresh, clamped = s.cfg.MinRefresh, true
	}
	if clamped {
		s.clamped.Add(1)
		s.log.Warn("the venue's expires_in is outside sane bounds: clamped",
			zap.Float64("expires_in", expiresIn), zap.Duration("refresh_in", refresh), zap.Duration("life", life))
	}
	return life, refresh
}

func (s *Session) scheduleLocked(gen uint64, ca *connAuth, after time.Duration) {
	if ca.timer != nil {
		ca.timer.Stop()
	}
	if !s.closed {
		ca.timer = time.AfterFunc(after, func() { s.renew(gen) })
	}
}

// renew refreshes the token of connection gen on that connection: the
// refresh_token grant first, the credentials if the venue refuses it. A
// refresh that could not be made (rate limit, timeout) is tried again
// before the token expires; a connection that has ended is forgotten; only
// when the venue refuses both grants is the client reconnected, so that
// its connect hook authenticates afresh.
func (s *Session) renew(gen uint64) {
	s.mu.Lock()
	ca, client := s.conns[gen], s.client
	if s.closed || ca == nil {
		s.mu.Unlock()
		return
	}
	setup, refresh, expires := ca.setup, ca.refresh, ca.expires
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := s.log.With(pidname.Field("client", setup.Client().PID()), zap.Uint64("generation", gen))
	log.Debug("refreshing the token", zap.Bool("refresh_token", refresh != ""), zap.Duration("expires_in", time.Until(expires)))
	var res json.RawMessage
	var err error
	if refresh != "" {
		res, err = setup.Call(ctx, "public/auth", map[string]any{"grant_type": "refresh_token", "refresh_token": refresh})
	}
	var rpc *actors.RPCError
	if refresh == "" || errors.As(err, &rpc) {
		if err != nil {
			s.log.Info("token refresh refused; authenticating with the credentials", zap.Error(err))
		}
		res, err = setup.Call(ctx, "public/auth", s.credentials())
	}
	if err == nil {
		if err = s.store(setup, res); err == nil {
			s.refreshes.Add(1)
			log.Debug("token refreshed")
			return
		}
	}
	s.refreshFailures.Add(1)
	switch {
	case errors.Is(err, actors.ErrNotConnected), errors.Is(err, actors.ErrDisconnected),
		errors.Is(err, actors.ErrClosed), errors.Is(err, actors.ErrNotFound):
		log.Debug("token refresh dropped: its connection ended (the next one authenticates in its hook)", zap.Error(err))
		s.forget(gen) // the connection ended: a new one authenticates in its hook
	case errors.As(err, &rpc):
		s.log.Warn("the venue refused both the refresh and the credentials; reconnecting", zap.Error(err))
		s.forget(gen)
		if client != nil && client.Health().Generation == gen {
			_ = client.Reconnect(ctx)
		}
	default: // rate-limited, timed out: try again before the token expires
		s.log.Info("token refresh not made; trying again", zap.Error(err))
		s.mu.Lock()
		if ca := s.conns[gen]; ca != nil {
			s.scheduleLocked(gen, ca, max(time.Until(expires)/2, s.cfg.MinRefresh))
		}
		s.mu.Unlock()
	}
}

// watch forgets connection gen's token when that connection ends (or the
// session closes): the token, its refresh timer and the authentication go
// with the connection they belong to.
func (s *Session) watch(gen uint64, setup *actors.Setup) {
	select {
	case <-setup.Done():
		s.forget(gen)
	case <-s.stop:
	}
}

func (s *Session) forget(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ca := s.conns[gen]; ca != nil {
		if ca.timer != nil {
			ca.timer.Stop()
		}
		delete(s.conns, gen)
	}
}
