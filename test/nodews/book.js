// A Deribit-like order book venue in Node.js on the `ws` library, for
// zenws's sequence-guard tests, written from Deribit's API documentation
// (book.{instrument}.{interval}: the first notification after a subscribe
// is {"type":"snapshot","change_id":N,...}, then {"type":"change",
// "change_id":M,"prev_change_id":N,...}). One book for every connection: a
// change every 5 ms. It listens on 127.0.0.1 (port from argv[2], 0 = any),
// prints "LISTENING <port>" on stdout, and exits when stdin closes.
//
// Requests {"jsonrpc":"2.0","id":N,"method":M,"params":P}, by M:
//   public/subscribe     {channels}: result the channels; a book channel's snapshot follows
//   public/unsubscribe   {channels}: result the channels
//   lose                 this connection does not get the next change (a lost message)
//   drop                 destroys this connection
//   stats                result {subscribes, unsubscribes}
'use strict';
const { WebSocketServer } = require('ws');

let changeId = 1000;
const stats = { subscribes: 0, unsubscribes: 0 };
const conns = new Set();
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2] || 0) });
wss.on('listening', () => process.stdout.write('LISTENING ' + wss.address().port + '\n'));

const isBook = (ch) => ch.startsWith('book.');
const note = (channel, data) => JSON.stringify({ jsonrpc: '2.0', method: 'subscription', params: { channel, data } });

setInterval(() => {
  const prev = changeId++;
  for (const c of conns) {
    for (const ch of c.subs) {
      if (!isBook(ch)) continue;
      if (c.lose > 0) { c.lose--; continue; }
      c.ws.send(note(ch, { type: 'change', change_id: changeId, prev_change_id: prev, timestamp: Date.now(),
        instrument_name: ch.split('.')[1], bids: [['change', 100 + (changeId % 7), 1]], asks: [] }));
    }
  }
}, 5);

wss.on('connection', (ws) => {
  const c = { ws, subs: new Set(), lose: 0 };
  conns.add(c);
  ws.on('close', () => conns.delete(c));
  const reply = (id, result) => ws.send(JSON.stringify({ jsonrpc: '2.0', id, result }));
  ws.on('message', (raw) => {
    let m;
    try { m = JSON.parse(raw); } catch { return; }
    const chans = (m.params && m.params.channels) || [];
    switch (m.method) {
      case 'public/subscribe':
        stats.subscribes++;
        reply(m.id, chans);
        for (const ch of chans) {
          c.subs.add(ch);
          if (isBook(ch)) {
            ws.send(note(ch, { type: 'snapshot', change_id: changeId, timestamp: Date.now(),
              instrument_name: ch.split('.')[1], bids: [['new', 100, 1]], asks: [['new', 101, 1]] }));
          }
        }
        break;
      case 'public/unsubscribe':
        stats.unsubscribes++;
        for (const ch of chans) c.subs.delete(ch);
        reply(m.id, chans);
        break;
      case 'lose':
        c.lose = 1;
        reply(m.id, 'ok');
        break;
      case 'drop':
        ws.terminate();
        break;
      case 'stats':
        reply(m.id, stats);
        break;
      default:
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } }));
    }
  });
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
