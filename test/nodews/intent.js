// A Deribit-shaped venue in Node.js on `ws`, for subscriptions as intent
// (issue 13). Same start/stop protocol as venue.js: port from argv[2],
// "LISTENING <port>" on stdout, exits when stdin closes.
//
// public/subscribe {"channels": [...]} answers with the channels it applied:
//   - a channel starting "typo." is left out of the result (Deribit drops
//     a channel it does not know, the way a mistyped one is);
//   - a channel starting "deny<N>." fails the whole request with error
//     {code: 10028, message: "too_many_requests"} the first N times it is
//     asked for (counted over every connection);
//   - the others are applied, and one notification per channel follows.
// public/unsubscribe {"channels": [...]} answers with the channels removed.
// channels       result: the channels of this connection, sorted.
// down {ms}      the TCP connection is destroyed and every handshake for ms
//                milliseconds is refused with HTTP 503.
// publish {channel}  one notification on every connection subscribed to it.
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const denied = new Map(); // channel -> times refused so far
let downUntil = 0;
const conns = new Set();

const server = http.createServer((req, res) => { res.writeHead(426); res.end(); });
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  if (Date.now() < downUntil) {
    socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

const notify = (ws, channel, seq) => ws.send(JSON.stringify({
  jsonrpc: '2.0', method: 'subscription', params: { channel, data: { seq } },
}));

wss.on('connection', (ws) => {
  const channels = new Set();
  ws.channels = channels;
  conns.add(ws);
  ws.on('close', () => conns.delete(ws));
  const reply = (id, result) => ws.send(JSON.stringify({ jsonrpc: '2.0', id, result }));
  const fail = (id, error) => ws.send(JSON.stringify({ jsonrpc: '2.0', id, error }));
  ws.on('message', (data) => {
    let msg;
    try { msg = JSON.parse(data.toString()); } catch (e) { return; }
    if (!msg || typeof msg.method !== 'string') return;
    const p = msg.params || {};
    switch (msg.method) {
      case 'public/subscribe':
      case 'private/subscribe': {
        const asked = Array.isArray(p.channels) ? p.channels.map(String) : [];
        for (const ch of asked) {
          const m = /^deny(\d+)\./.exec(ch);
          if (m) {
            const n = denied.get(ch) || 0;
            if (n < Number(m[1])) {
              asked.forEach((c) => { if (/^deny\d+\./.test(c)) denied.set(c, (denied.get(c) || 0) + 1); });
              fail(msg.id, { code: 10028, message: 'too_many_requests' });
              return;
            }
          }
        }
        const applied = asked.filter((ch) => !ch.startsWith('typo.'));
        applied.forEach((ch) => channels.add(ch));
        reply(msg.id, applied);
        applied.forEach((ch) => notify(ws, ch, 1));
        break;
      }
      case 'public/unsubscribe':
      case 'private/unsubscribe': {
        const asked = Array.isArray(p.channels) ? p.channels.map(String) : [];
        const removed = asked.filter((ch) => channels.delete(ch));
        reply(msg.id, removed);
        break;
      }
      case 'channels':
        reply(msg.id, [...channels].sort());
        break;
      case 'down':
        downUntil = Date.now() + Number(p.ms || 0);
        for (const c of conns) c.terminate();
        break;
      case 'publish':
        for (const c of conns) if (c.channels.has(String(p.channel))) notify(c, String(p.channel), 2);
        reply(msg.id, 'ok');
        break;
      default:
        fail(msg.id, { code: -32601, message: 'method not found' });
    }
  });
  ws.on('error', (e) => process.stderr.write('intent venue: ' + e.message + '\n'));
});

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  process.stdout.write('LISTENING ' + server.address().port + '\n');
});
server.on('error', (e) => {
  process.stderr.write('intent venue: ' + e.message + '\n');
  process.exit(1);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
