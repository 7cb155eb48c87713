// A venue in Node.js on the `ws` library (Debian's node-ws): an independent
// WebSocket implementation for zenws's tests. It listens on 127.0.0.1 (port
// from argv[2], 0 = any), prints "LISTENING <port>" on stdout, logs to
// stderr, and exits when stdin closes (its parent went away).
//
// Every text message is answered:
//   - not JSON-RPC: echoed back as is (binary messages too);
//   - {"id":N,"method":M,"params":P}, by M:
//       echo               result P
//       fail               error {code: 10009, message: "not_enough_funds", data: P}
//       public/subscribe   result P.channels, then 3 notifications per channel
//                          {"method":"subscription","params":{"channel":c,"data":{"seq":i}}}
//       public/unsubscribe result P.channels
//       server_ping        a WebSocket ping with payload P.payload; the result
//                          {"pong": payload} is sent when the pong comes back
//       close              a close frame with P.code, P.reason (no result)
//       drop               the TCP connection is destroyed (no close frame)
//       stats              result {connections, subscribes, pongs}
//       refuse             new handshakes refused with HTTP 503 for P.ms (default 60000),
//                          then this connection is destroyed (no close frame)
//       anything else      error {code: -32601, message: "method not found"}
//
// A connection whose URL path holds "deaf" is accepted and never read from
// (its socket paused): its pings are never answered, its messages never
// seen. stats counts such connections as `deaf`.
'use strict';
const { WebSocketServer } = require('ws');

const stats = { connections: 0, subscribes: 0, pongs: 0, deaf: 0 };
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2] || 0) });

wss.on('listening', () => {
  process.stdout.write('LISTENING ' + wss.address().port + '\n');
});

wss.on('connection', (ws, req) => {
  stats.connections++;
  if (req.url.includes('deaf')) {
    stats.deaf++;
    ws._socket.pause(); // nothing is read: pings go unanswered
    return;
  }
  const waitingPongs = new Map();
  ws.on('pong', (data) => {
    stats.pongs++;
    const key = data.toString();
    const id = waitingPongs.get(key);
    if (id !== undefined) {
      waitingPongs.delete(key);
      reply(id, { pong: key });
    }
  });
  const reply = (id, result) => ws.send(JSON.stringify({ jsonrpc: '2.0', id, result }));
  const fail = (id, error) => ws.send(JSON.stringify({ jsonrpc: '2.0', id, error }));

  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      ws.send(data, { binary: true });
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch (e) {
      msg = null;
    }
    if (!msg || typeof msg !== 'object' || msg.id === undefined || typeof msg.method !== 'string') {
      ws.send(data.toString());
      return;
    }
    const p = msg.params || {};
    switch (msg.method) {
      case 'echo':
        reply(msg.id, p);
        break;
      case 'fail':
        fail(msg.id, { code: 10009, message: 'not_enough_funds', data: p });
        break;
      case 'public/subscribe': {
        stats.subscribes++;
        const channels = p.channels || [];
        reply(msg.id, channels);
        for (let i = 1; i <= 3; i++) {
          for (const channel of channels) {
            ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'subscription', params: { channel, data: { seq: i } } }));
          }
        }
        break;
      }
      case 'public/unsubscribe':
        reply(msg.id, p.channels || []);
        break;
      case 'server_ping': {
        const payload = String(p.payload || 'venue-ping');
        waitingPongs.set(payload, msg.id);
        ws.ping(payload);
        break;
      }
      case 'close':
        ws.close(p.code || 1000, p.reason || '');
        break;
      case 'drop':
        ws.terminate();
        break;
      case 'stats':
        reply(msg.id, stats);
        break;
      case 'refuse': {
        const until = Date.now() + (Number(p.ms) || 60000);
        wss.options.verifyClient = (info, cb) => (Date.now() < until ? cb(false, 503, 'maintenance') : cb(true));
        ws.terminate();
        break;
      }
      default:
        fail(msg.id, { code: -32601, message: 'method not found' });
    }
  });
  ws.on('error', (e) => process.stderr.write('venue: ' + e.message + '\n'));
});

wss.on('error', (e) => {
  process.stderr.write('venue: ' + e.message + '\n');
  process.exit(1);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
