package transport

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/zenws/zenws/internal/redact"
)

// checkRedirect is the http.Client's CheckRedirect for the handshake (it
// would otherwise follow any number of redirects, anywhere, with every
// header). coder/websocket calls it after turning ws/wss into http/https.
func (o Options) checkRedirect(req *http.Request, via []*http.Request) error {
	refuse := func(reason string) error {
		e := &RedirectError{Location: displayURL(req.URL), Followed: len(via) - 1, Reason: reason}
		if req.Response != nil {
			e.StatusCode = req.Response.StatusCode
		}
		return e
	}
	if o.FollowRedirects == 0 {
		return refuse("redirects are not followed (Options.FollowRedirects is 0)")
	}
	if len(via) > o.FollowRedirects {
		return refuse("more than Options.FollowRedirects redirects")
	}
	for _, prev := range via {
		if prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return refuse("it would downgrade wss to ws")
		}
	}
	// The Referer would carry the previous URL, query and all.
	req.Header.Del("Referer")
	if sameOrigin(via[0].URL, req.URL) {
		return nil
	}
	if !o.redirectHostAllowed(req.URL) {
		return refuse("it leaves the origin for a host not in Options.RedirectHosts")
	}
	for _, k := range []string{"Authorization", "Cookie", "Proxy-Authorization", "Sec-Websocket-Protocol"} {
		req.Header.Del(k)
	}
	for k := range o.Header {
		if !isProtocolHeader(k) {
			req.Header.Del(k)
		}
	}
	return nil
}

// isProtocolHeader: the handshake's own headers, which coder/websocket sets
// on top of the user's and which every hop needs.
func isProtocolHeader(k string) bool {
	k = http.CanonicalHeaderKey(k)
	return k == "Connection" || k == "Upgrade" || strings.HasPrefix(k, "Sec-Websocket-")
}

func (o Options) redirectHostAllowed(u *url.URL) bool {
	for _, h := range o.RedirectHosts {
		if strings.EqualFold(h, u.Hostname()) || strings.EqualFold(h, hostPort(u)) {
			return true
		}
	}
	return false
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(hostPort(a), hostPort(b))
}

// hostPort is u's host:port with the scheme's default port filled in.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") || strings.EqualFold(u.Scheme, "wss") {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// displayURL renders a redirect target as the user would write it (ws or
// wss), redacted.
func displayURL(u *url.URL) string {
	c := *u
	switch c.Scheme {
	case "http":
		c.Scheme = "ws"
	case "https":
		c.Scheme = "wss"
	}
	return redact.URL(c.String())
}
