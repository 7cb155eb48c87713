// A Deribit-like book venue in Node's ws, for review15: answers
// public/subscribe and public/unsubscribe (a snapshot follows each
// subscribe), streams one change of every subscribed book every 2 ms to
// every connection, and takes orders as JSON-RPC calls:
//   ctl/skip {n}     lose the next n changes (a gap)
//   ctl/dupe         send the last change again
//   ctl/drop         terminate the connection the call came on
//   ctl/early        the next subscribe's snapshot goes before its answer
// Usage: node book.js PORT
const WebSocket = require('ws');
const port = parseInt(process.argv[2] || '0', 10);
const wss = new WebSocket.Server({ host: '127.0.0.1', port });
let cur = 1000, skip = 0, early = false, last = null;
const conns = new Set();
const ch = (c) => c.channels || (c.channels = new Set());
function note(channel, data) {
  return JSON.stringify({ jsonrpc: '2.0', method: 'subscription', params: { channel, data } });
}
wss.on('connection', (ws) => {
  conns.add(ws);
  ws.on('close', () => conns.delete(ws));
  ws.on('message', (raw) => {
    let m;
    try { m = JSON.parse(raw.toString()); } catch (e) { return; }
    if (m.id === undefined) return;
    const answer = (result) => ws.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }));
    const p = m.params || {};
    switch (m.method) {
      case 'public/subscribe': {
        const snaps = (p.channels || []).map((c) => note(c, { type: 'snapshot', change_id: cur, bids: [], asks: [] }));
        (p.channels || []).forEach((c) => ch(ws).add(c));
        if (early) { early = false; snaps.forEach((s) => ws.send(s)); answer(p.channels); }
        else { answer(p.channels); snaps.forEach((s) => ws.send(s)); }
        break;
      }
      case 'public/unsubscribe':
        (p.channels || []).forEach((c) => ch(ws).delete(c));
        answer(p.channels);
        break;
      case 'ctl/skip': skip += (p.n || 1); answer('ok'); break;
      case 'ctl/dupe': if (last) for (const c of conns) for (const n of ch(c)) c.send(note(n, last)); answer('ok'); break;
      case 'ctl/drop': answer('ok'); setTimeout(() => ws.terminate(), 5); break;
      case 'ctl/early': early = true; answer('ok'); break;
      default: answer('ok');
    }
  });
});
setInterval(() => {
  const prev = cur;
  cur++;
  if (skip > 0) { skip--; return; }
  last = { type: 'change', prev_change_id: prev, change_id: cur, bids: [['change', 1, 1]], asks: [] };
  for (const c of conns) for (const n of ch(c)) c.send(note(n, last));
}, 2);
wss.on('listening', () => console.log('LISTENING ' + wss.address().port));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
