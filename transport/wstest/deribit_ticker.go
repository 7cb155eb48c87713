package wstest

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// tickData is the "data" of a ticker notification.
type tickData struct {
	ChannelSeq uint64 `json:"channel_seq"`
	Timestamp  int64  `json:"timestamp"`
}

// tickerLoop publishes the periodic notifications of WithDeribitTicker
// until the server is closed.
func (s *Server) tickerLoop(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.tick()
		}
	}
}

// tick sends one notification per subscribed channel. Each notification is
// encoded once and the same bytes go to every subscriber; connections are
// written to in parallel (each in channel order) so that one slow client
// does not delay the others, and tick returns when every write is done.
func (s *Server) tick() {
	subs := make(map[string][]*Conn)
	for _, c := range s.Conns() {
		for _, ch := range c.Channels() {
			if !slices.Contains(s.cfg.bookChannels, ch) { // a Book's (book.go)
				subs[ch] = append(subs[ch], c)
			}
		}
	}
	if len(subs) == 0 {
		return
	}
	names := make([]string, 0, len(subs))
	for ch := range subs {
		names = append(names, ch)
	}
	sort.Strings(names)

	out := make(map[*Conn][][]byte)
	now := time.Now().UnixMilli()
	for _, ch := range names {
		s.d.mu.Lock()
		if s.d.seq == nil {
			s.d.seq = make(map[string]uint64)
		}
		s.d.seq[ch]++
		n := s.d.seq[ch]
		s.d.mu.Unlock()
		b, err := encodeNotification("subscription", subscriptionParams{Channel: ch, Data: tickData{n, now}})
		if err != nil {
			continue // cannot happen: every part is a string or a number
		}
		for _, c := range subs[ch] {
			if !c.Stalled() {
				out[c] = append(out[c], b)
			}
		}
	}
	var wg sync.WaitGroup
	for c, msgs := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, m := range msgs {
				if c.write(c.ctx, websocket.MessageText, m) != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Published returns the channel_seq of the last notification the ticker
// (WithDeribitTicker) published on channel, 0 if none. Notifications sent
// with Publish are not counted.
func (s *Server) Published(channel string) uint64 {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	return s.d.seq[channel]
}
