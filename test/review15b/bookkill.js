// A Deribit-like book venue on Node's ws, written for review15b: one
// change_id sequence per channel shared by every connection; a subscribe is
// answered, then a snapshot; a change every millisecond; every KILL ms it
// terminates every connection at once (both copies of a redundant feed).
// Prints "LISTENING <port>" once it listens; exits when stdin closes.
const WebSocket = require('ws');
const port = parseInt(process.argv[2] || '0', 10);
const KILL = parseInt(process.argv[3] || '200', 10);
const wss = new WebSocket.Server({ host: '127.0.0.1', port });
const ids = new Map();
const conns = new Set();
function snap(ch, id) {
  return JSON.stringify({ jsonrpc: '2.0', method: 'subscription', params: { channel: ch, data: { type: 'snapshot', timestamp: 1, instrument_name: 'X', change_id: id, bids: [['new', 100, 1]], asks: [] } } });
}
function change(ch, id) {
  return JSON.stringify({ jsonrpc: '2.0', method: 'subscription', params: { channel: ch, data: { type: 'change', timestamp: 1, instrument_name: 'X', prev_change_id: id - 1, change_id: id, bids: [['change', 100, id]], asks: [] } } });
}
wss.on('connection', (ws) => {
  ws.subs = new Set();
  conns.add(ws);
  ws.on('close', () => conns.delete(ws));
  ws.on('error', () => {});
  ws.on('message', (raw) => {
    let m;
    try { m = JSON.parse(raw); } catch (e) { return; }
    if (m.id === undefined) return;
    const chs = (m.params && m.params.channels) || [];
    if (m.method === 'public/subscribe') {
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: chs }));
      for (const ch of chs) {
        ws.subs.add(ch);
        if (!ids.has(ch)) ids.set(ch, 1);
        ws.send(snap(ch, ids.get(ch)));
      }
    } else if (m.method === 'public/unsubscribe') {
      for (const ch of chs) ws.subs.delete(ch);
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: chs }));
    } else {
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: 'ok' }));
    }
  });
});
setInterval(() => {
  for (const [ch, id] of ids) {
    ids.set(ch, id + 1);
    const f = change(ch, id + 1);
    for (const ws of conns) if (ws.subs.has(ch) && ws.readyState === WebSocket.OPEN) ws.send(f);
  }
}, 1);
setInterval(() => { for (const ws of conns) ws.terminate(); }, KILL);
wss.on('listening', () => { process.stdout.write('LISTENING ' + wss.address().port + '\n'); });
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
