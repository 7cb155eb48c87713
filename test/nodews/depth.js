// A Binance-like diff depth venue in Node.js on the `ws` library, for
// zenws's sequence-guard tests, written from Binance's documentation
// ("How to manage a local order book correctly"): combined-stream events
// {"stream":"<symbol>@depth@100ms","data":{"e":"depthUpdate","E":ms,"s":SYMBOL,
// "U":first,"u":last,"b":[...],"a":[...]}}, each covering one to three
// update ids, every 5 ms; and the REST snapshot on the same port,
// GET /api/v3/depth?symbol=SYMBOL -> {"lastUpdateId":N,"bids":[...],"asks":[...]}.
// It listens on 127.0.0.1 (port from argv[2], 0 = any), prints
// "LISTENING <port>" on stdout, and exits when stdin closes.
//
// Requests {"method":M,"params":P,"id":N}, by M:
//   SUBSCRIBE    {"result":null,"id":N}
//   UNSUBSCRIBE  {"result":null,"id":N}
//   LOSE         this connection misses the next event: {"result":null,"id":N}
//   STATS        {"result":{snapshots},"id":N}
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

let updateId = 5000;
const stats = { snapshots: 0 };
const conns = new Set();
const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://127.0.0.1');
  if (u.pathname !== '/api/v3/depth') {
    res.writeHead(404).end();
    return;
  }
  stats.snapshots++;
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ lastUpdateId: updateId, bids: [['100.0', '1.0']], asks: [['101.0', '1.0']] }));
});
const wss = new WebSocketServer({ server });
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => process.stdout.write('LISTENING ' + server.address().port + '\n'));

setInterval(() => {
  const first = updateId + 1;
  updateId += 1 + Math.floor(Math.random() * 3);
  for (const c of conns) {
    for (const s of c.streams) {
      if (c.lose > 0) { c.lose--; continue; }
      c.ws.send(JSON.stringify({ stream: s, data: { e: 'depthUpdate', E: Date.now(), s: s.split('@')[0].toUpperCase(),
        U: first, u: updateId, b: [['100.0', String(updateId % 5)]], a: [] } }));
    }
  }
}, 5);

wss.on('connection', (ws) => {
  const c = { ws, streams: new Set(), lose: 0 };
  conns.add(c);
  ws.on('close', () => conns.delete(c));
  ws.on('message', (raw) => {
    let m;
    try { m = JSON.parse(raw); } catch { return; }
    const reply = (result) => ws.send(JSON.stringify({ result, id: m.id }));
    switch (m.method) {
      case 'SUBSCRIBE': for (const s of m.params || []) c.streams.add(s); reply(null); break;
      case 'UNSUBSCRIBE': for (const s of m.params || []) c.streams.delete(s); reply(null); break;
      case 'LOSE': c.lose = 1; reply(null); break;
      case 'STATS': reply(stats); break;
      default: ws.send(JSON.stringify({ error: { code: -1100, msg: "Illegal characters found in parameter 'method'" }, id: m.id }));
    }
  });
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
