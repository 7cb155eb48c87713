package wstest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Deribit's error codes used by the simulator, for use in assertions.
const (
	// CodeTooManyRequests (10028, "too_many_requests") answers a request
	// that found too few credits (WithDeribitCredits).
	CodeTooManyRequests = 10028
	// CodeInvalidCredentials (13004, "invalid_credentials") answers a
	// public/auth whose credentials, signature or refresh token are wrong.
	CodeInvalidCredentials = 13004
	// CodeUnauthorized (13009, "unauthorized") answers a built-in private
	// method on a connection that is not authenticated.
	CodeUnauthorized = 13009
)

// signatureWindow is how far a client_signature timestamp may be from the
// server's clock.
const signatureWindow = 60 * time.Second

// deribitCreds is the one sub-account WithDeribitCredentials configures.
type deribitCreds struct {
	id, secret string
}

// nonceKey identifies a client_signature nonce, which may be used once per
// timestamp.
type nonceKey struct {
	clientID  string
	timestamp int64
	nonce     string
}

type authParams struct {
	GrantType    string  `json:"grant_type"`
	ClientID     string  `json:"client_id"`
	ClientSecret string  `json:"client_secret"`
	Timestamp    *int64  `json:"timestamp"`
	Nonce        string  `json:"nonce"`
	Data         *string `json:"data"`
	Signature    string  `json:"signature"`
	RefreshToken string  `json:"refresh_token"`
}

func invalidCredentials(reason string) *RPCError {
	return &RPCError{Code: CodeInvalidCredentials, Message: "invalid_credentials", Data: reason}
}

func unauthorized() *RPCError {
	return &RPCError{Code: CodeUnauthorized, Message: "unauthorized"}
}

// requireAuth wraps a built-in private responder so that it answers
// CodeUnauthorized on a connection that is not authenticated.
func requireAuth(fn Responder) Responder {
	return func(c *Conn, params json.RawMessage) (any, *RPCError) {
		if !c.Authenticated() {
			return nil, unauthorized()
		}
		return fn(c, params)
	}
}

// expiresIn is the TTL in whole seconds, rounded up, at least 1.
func expiresIn(ttl time.Duration) int64 {
	return max(1, int64((ttl+time.Second-1)/time.Second))
}

func deribitAuth(c *Conn, params json.RawMessage) (any, *RPCError) {
	s := c.s
	var p authParams
	var decodeErr error
	if len(params) > 0 {
		decodeErr = json.Unmarshal(params, &p)
	}
	ttl := s.cfg.tokenTTL
	if s.cfg.creds == nil {
		// Any auth succeeds; the account (for shared credits) is the
		// client_id the client named, if any.
		c.authenticate(p.GrantType, p.ClientID, ttl)
		return map[string]any{
			"access_token":  "tok",
			"expires_in":    expiresIn(ttl),
			"refresh_token": "ref",
			"token_type":    "bearer",
			"scope":         "connection",
		}, nil
	}
	if decodeErr != nil {
		return nil, invalidParams("params must be an object with string grant_type, client_id, ... and integer timestamp")
	}
	clientID, rpcErr := s.checkGrant(&p)
	if rpcErr != nil {
		return nil, rpcErr
	}
	access, refresh := randomHex(), randomHex()
	s.d.mu.Lock()
	if s.d.refresh == nil {
		s.d.refresh = make(map[string]string)
	}
	s.d.refresh[refresh] = clientID
	s.d.mu.Unlock()
	c.authenticate(p.GrantType, clientID, ttl)
	return map[string]any{
		"access_token":  access,
		"expires_in":    expiresIn(ttl),
		"refresh_token": refresh,
		"token_type":    "bearer",
		"scope":         "connection mainaccount",
	}, nil
}

// checkGrant validates a public/auth request against the configured
// credentials and returns the authenticated client_id.
func (s *Server) checkGrant(p *authParams) (string, *RPCError) {
	creds := s.cfg.creds
	switch p.GrantType {
	case "client_credentials":
		if p.ClientID == "" || p.ClientSecret == "" {
			return "", invalidParams("client_credentials needs client_id and client_secret")
		}
		if !equal(p.ClientID, creds.id) || !equal(p.ClientSecret, creds.secret) {
			return "", invalidCredentials("wrong client_id or client_secret")
		}
		return creds.id, nil
	case "client_signature":
		if p.ClientID == "" || p.Timestamp == nil || p.Nonce == "" || p.Signature == "" {
			return "", invalidParams("client_signature needs client_id, timestamp, nonce and signature")
		}
		if !equal(p.ClientID, creds.id) {
			return "", invalidCredentials("wrong client_id")
		}
		ts := *p.Timestamp
		skew := time.Duration(time.Now().UnixMilli()-ts) * time.Millisecond
		if skew > signatureWindow || skew < -signatureWindow {
			return "", invalidCredentials("timestamp more than 60 s from server time")
		}
		data := ""
		if p.Data != nil {
			data = *p.Data
		}
		if !equal(p.Signature, DeribitSignature(creds.secret, ts, p.Nonce, data)) {
			return "", invalidCredentials("invalid signature")
		}
		if !s.useNonce(nonceKey{creds.id, ts, p.Nonce}) {
			return "", invalidCredentials("nonce already used with this timestamp")
		}
		return creds.id, nil
	case "refresh_token":
		if p.RefreshToken == "" {
			return "", invalidParams("refresh_token grant needs refresh_token")
		}
		s.d.mu.Lock()
		id, ok := s.d.refresh[p.RefreshToken]
		delete(s.d.refresh, p.RefreshToken)
		s.d.mu.Unlock()
		if !ok {
			return "", invalidCredentials("unknown or already used refresh_token")
		}
		return id, nil
	case "":
		return "", invalidParams("grant_type is required")
	default:
		return "", invalidParams("unsupported grant_type")
	}
}

// useNonce records a verified nonce and reports whether it was new. Nonces
// whose timestamp is outside the window can never be accepted again, so
// they are forgotten.
func (s *Server) useNonce(k nonceKey) bool {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	if _, dup := s.d.nonces[k]; dup {
		return false
	}
	if s.d.nonces == nil {
		s.d.nonces = make(map[nonceKey]struct{})
	}
	oldest := time.Now().Add(-2 * signatureWindow).UnixMilli()
	for old := range s.d.nonces {
		if old.timestamp < oldest {
			delete(s.d.nonces, old)
		}
	}
	s.d.nonces[k] = struct{}{}
	return true
}

// DeribitSignature returns Deribit's client_signature for public/auth: the
// lowercase hex of HMAC-SHA256 with key clientSecret over
// timestamp + "\n" + nonce + "\n" + data, timestamp in Unix milliseconds.
// It helps tests build valid (and deliberately invalid) requests.
func DeribitSignature(clientSecret string, timestamp int64, nonce, data string) string {
	mac := hmac.New(sha256.New, []byte(clientSecret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10) + "\n" + nonce + "\n" + data))
	return hex.EncodeToString(mac.Sum(nil))
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// authenticate records a successful public/auth on c.
func (c *Conn) authenticate(grant, clientID string, ttl time.Duration) {
	c.mu.Lock()
	c.authExpiry = time.Now().Add(ttl)
	c.authClientID = clientID
	c.authCount++
	c.authGrants = append(c.authGrants, grant)
	c.notifyLocked()
	c.mu.Unlock()

	s := c.s
	s.mu.Lock()
	s.authCount++
	s.notifyLocked()
	s.mu.Unlock()
}

// Authenticated reports whether the connection is authenticated now: a
// "public/auth" succeeded on it (WithDeribit) and the token it returned has
// not expired (WithDeribitTokenTTL).
func (c *Conn) Authenticated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authenticatedLocked()
}

func (c *Conn) authenticatedLocked() bool {
	return !c.authExpiry.IsZero() && time.Now().Before(c.authExpiry)
}

// account returns the client_id the connection is authenticated as now,
// or "" if it is not authenticated.
func (c *Conn) account() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.authenticatedLocked() {
		return ""
	}
	return c.authClientID
}

// AuthCount returns how many "public/auth" requests succeeded on this
// connection.
func (c *Conn) AuthCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authCount
}

// AuthGrants returns the grant_type of every successful "public/auth" on
// this connection, in order ("client_credentials", "client_signature",
// "refresh_token"; without WithDeribitCredentials whatever the client sent).
func (c *Conn) AuthGrants() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.authGrants...)
}

// AuthCount returns how many "public/auth" requests succeeded, on all
// connections since the server started.
func (s *Server) AuthCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authCount
}

// WaitAuthCount waits until at least n "public/auth" requests have
// succeeded (see AuthCount), for example after a client reconnected.
func (s *Server) WaitAuthCount(ctx context.Context, n int) error {
	err := s.waitFor(ctx, func() bool { return s.authCount >= n })
	if err != nil {
		return fmt.Errorf("wstest: waiting for %d successful auths (have %d): %w", n, s.AuthCount(), err)
	}
	return nil
}
