package opspage

import (
	"html/template"
	"io"
	"net/url"
	"strconv"
	"time"
)

// view is what the template renders: the page's document, its rows
// formatted (a template function call per cell would cost more than the
// rest of the row), and the links around it.
type view struct {
	Page
	Rows       [][]row // a slice per pool
	Details    bool
	RefreshSec int
	Node       string
}

// row is one client of the HTML table, its figures formatted.
type row struct {
	C                              *Client // not embedded: templates find promoted fields slowly
	P50, P99, Last, Channels, Link string
}

func (h *Handler) render(w io.Writer, p Page, q query) error {
	v := view{Page: p, Details: q.client != "", Rows: make([][]row, len(p.Pools))}
	if h.o.refresh > 0 {
		v.RefreshSec = int(h.o.refresh / time.Second)
	}
	if h.sys != nil {
		v.Node = clip(h.sys.Address(), maxShort)
	}
	for i := range p.Pools {
		pl := &p.Pools[i]
		v.Rows[i] = make([]row, len(pl.Clients))
		for j := range pl.Clients {
			c := &pl.Clients[j]
			v.Rows[i][j] = row{C: c, P50: dur(c.RTTP50Ns), P99: dur(c.RTTP99Ns), Last: dur(c.RTTLastNs),
				Channels: channels(c.Channels), Link: "?" + url.Values{"pool": {pl.Name}, "client": {c.ID}}.Encode()}
		}
	}
	return page.Execute(w, v)
}

// dur formats a round trip: "–" for none yet.
func dur(ns int64) string {
	if ns == 0 {
		return "–"
	}
	d := time.Duration(ns)
	switch {
	case d < time.Millisecond:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + " µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + " ms"
	}
	return d.Round(time.Millisecond).String()
}

// channels is a row's channel counts: "3: 2 active, 1 failed", "0", or
// "–" where they are not known.
func channels(c *ChannelCounts) string {
	if c == nil {
		return "–"
	}
	s := strconv.Itoa(c.Total)
	if c.Total == 0 {
		return s
	}
	sep := ": "
	for _, n := range []struct {
		n    int
		name string
	}{{c.Active, "active"}, {c.Pending, "pending"}, {c.Failed, "failed"}, {c.Stale, "stale"}, {c.Resyncing, "resyncing"}} {
		if n.n > 0 {
			s += sep + strconv.Itoa(n.n) + " " + n.name
			sep = ", "
		}
	}
	return s
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"dur": dur,
	"ago": func(now time.Time, t *time.Time) string {
		if t == nil {
			return "–"
		}
		return now.Sub(*t).Round(time.Second).String()
	},
	"when": func(t *time.Time) string {
		if t == nil {
			return "–"
		}
		return t.UTC().Format("15:04:05.000")
	},
	"num": func(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) },
	"pageOf": func(pool string, offset, limit int) string {
		return "?" + url.Values{"pool": {pool}, "offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}.Encode()
	},
	"add":  func(a, b int) int { return a + b },
	"sub":  func(a, b int) int { return max(a-b, 0) },
	"lt":   func(a, b int) bool { return a < b },
	"upto": func(p Pool) int { return p.Offset + len(p.Clients) },
}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .RefreshSec}}<meta http-equiv="refresh" content="{{.RefreshSec}}">{{end}}
<title>zenws pools</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fff}
h1{font-size:18px;margin:0 0 .2em}h2{font-size:15px;margin:1.4em 0 .3em}
.meta{color:#666}
table{border-collapse:collapse;margin:.4em 0}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top;max-width:28em;overflow-wrap:break-word}
th,td.n,td.state{white-space:nowrap}
th{background:#f3f3f3}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.connected{color:#176117}.reconnecting,.connecting{color:#9a6700}.disconnected,.unknown{color:#b3261e}
.why{color:#b3261e}.ok{color:#176117}
a{color:#0b57d0}
</style>
</head>
<body>
<h1>zenws pools</h1>
<p class="meta">node <code>{{.Node}}</code> · generated {{.GeneratedAt.Format "2006-01-02 15:04:05 MST"}} ·
<a href="?format=json">JSON</a> · <a href="readyz">readyz</a> · <a href="livez">livez</a>{{if .Details}} · <a href=".">all pools</a>{{end}}</p>
{{$now := .GeneratedAt}}{{$details := .Details}}
{{range $i, $p := .Pools}}
<section>
<h2>pool <q>{{$p.Name}}</q></h2>
<p class="meta">strategy {{$p.Strategy}} · {{$p.Total}} clients, {{$p.Eligible}} eligible, {{$p.Healthy}} healthy ·
states:{{range $s, $n := $p.States}} {{$s}} {{$n}}{{end}} · failovers {{$p.Failovers}} · no connections {{$p.NoConnections}}</p>
{{if not $details}}
<table class="labels"><tr><th>venue label</th><th>clients</th><th>healthy</th></tr>
{{range $p.Labels}}<tr><td>{{if .Label}}{{.Label}}{{else}}<i>(no label)</i>{{end}}</td><td class="n">{{.Total}}</td><td class="n">{{.Healthy}}</td></tr>
{{end}}{{if $p.LabelsOmitted}}<tr><td colspan="3">and {{$p.LabelsOmitted}} more labels</td></tr>{{end}}</table>
{{end}}
{{if $details}}{{range $c := $p.Clients}}
<table class="details">
<tr><th>client</th><td>{{$c.ID}}</td></tr>
<tr><th>node</th><td>{{$c.Node}}</td></tr>
<tr><th>label</th><td class="label">{{$c.Label}}</td></tr>
<tr><th>endpoint</th><td>{{$c.Endpoint}}</td></tr>
<tr><th>state</th><td class="state {{$c.State}}">{{$c.State}}{{if $c.Degraded}} (degraded){{end}}</td></tr>
<tr><th>picked?</th><td class="notpicked">{{if $c.NotPicked}}<span class="why">{{$c.NotPicked}}</span>{{else}}<span class="ok">competes</span>{{end}}</td></tr>
<tr><th>connected for</th><td>{{ago $now $c.ConnectedSince}} (generation {{$c.Generation}}, {{$c.Reconnects}} reconnects)</td></tr>
<tr><th>latency</th><td>p50 {{dur $c.RTTP50Ns}} · p99 {{dur $c.RTTP99Ns}} · last {{dur $c.RTTLastNs}} · peak EWMA {{dur $c.PeakEWMANs}}</td></tr>
<tr><th>in flight</th><td>{{$c.InFlight}} balanced · {{$c.Pending}} pending requests</td></tr>
<tr><th>figures</th><td>load {{num $c.Load}} · score {{num $c.Score}} · recent errors {{num $c.RecentErrors}} · picks {{$c.Picks}} · failures {{$c.Failures}}</td></tr>
<tr><th>heartbeat</th><td>{{$c.HeartbeatFailures}} unanswered</td></tr>
<tr><th>last error</th><td class="error">{{$c.LastError}}</td></tr>
</table>
{{with $c.Channels}}<h2>channels ({{.Total}}: {{.Active}} active, {{.Pending}} pending, {{.Failed}} failed, {{.Stale}} stale, {{.Resyncing}} resyncing)</h2>
{{if $c.Remote}}<p class="meta">each channel with its state and error: on the page of node {{$c.Node}}, which holds the connection</p>{{else}}<table class="channels"><tr><th>channel</th><th>state</th><th>wanted</th><th>since</th><th>last message</th><th>attempts</th><th>next retry</th><th>error</th></tr>
{{range $c.ChannelList}}<tr class="channel"><td class="name">{{.Channel}}</td><td>{{.State}}</td><td>{{.Wanted}}</td><td>{{when .Since}}</td><td>{{when .LastMessage}}</td><td class="n">{{.Attempts}}</td><td>{{when .NextRetry}}</td><td class="error">{{.Error}}</td></tr>
{{end}}</table>
{{if lt (len $c.ChannelList) .Total}}<p>and {{sub .Total (len $c.ChannelList)}} more channels (the first {{len $c.ChannelList}} are listed)</p>{{end}}{{end}}
{{else}}<p class="meta">channels: not known</p>{{end}}
{{end}}{{else}}{{if $p.Clients}}
<table class="clients"><tr><th>node</th><th>label</th><th>state</th><th>not picked because</th><th>p50</th><th>p99</th><th>last RTT</th><th>in flight</th><th>pending</th><th>channels</th><th>last error</th><th></th></tr>
{{range index $.Rows $i}}<tr class="client"><td>{{.C.Node}}</td><td class="label">{{.C.Label}}</td><td class="state {{.C.State}}">{{.C.State}}</td><td class="notpicked why">{{.C.NotPicked}}</td><td class="n">{{.P50}}</td><td class="n">{{.P99}}</td><td class="n">{{.Last}}</td><td class="n">{{.C.InFlight}}</td><td class="n">{{.C.Pending}}</td><td>{{.Channels}}</td><td class="error">{{.C.LastError}}</td><td><a href="{{.Link}}">details</a></td></tr>
{{end}}</table>
{{end}}{{end}}
{{if not $details}}<p class="meta">clients {{if $p.Clients}}{{add $p.Offset 1}}–{{upto $p}}{{else}}none{{end}} of {{$p.Total}}{{if $p.Offset}} · <a href="{{pageOf $p.Name (sub $p.Offset $p.Limit) $p.Limit}}">previous</a>{{end}}{{if lt (upto $p) $p.Total}} · <a href="{{pageOf $p.Name (upto $p) $p.Limit}}">next</a>{{end}}</p>{{end}}
</section>
{{else}}<p>No pools.</p>{{end}}
</body>
</html>
`
