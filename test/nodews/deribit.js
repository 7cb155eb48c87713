// A Deribit-like venue in Node.js on the `ws` library, for zenws's tests:
// JSON-RPC 2.0 with authentication that belongs to the connection it was
// made on (as Deribit's does). It listens on 127.0.0.1 (port from argv[2],
// 0 = any), prints "LISTENING <port>" on stdout, logs to stderr, and exits
// when stdin closes. With argv[3] "refuse" it refuses every handshake (503).
//
// Requests {"jsonrpc":"2.0","id":N,"method":M,"params":P}, by M:
//   public/auth          client_credentials (client_id "zenws-node", client_secret
//                        "node-secret") or refresh_token (one issued on this
//                        connection): {access_token, refresh_token, expires_in: 900};
//                        wrong credentials: error 13004 "invalid_credentials"
//   public/set_heartbeat result "ok"; then {"method":"heartbeat","params":{"type":
//                        "test_request"}} every P.interval seconds (fractions allowed)
//   public/test          result {"version":"node"}
//   private/*            error 13009 "unauthorized" unless this connection has
//                        authenticated; private/buy: result {order:{order_id}}, the
//                        order remembered with the connection's number (1, 2, ...)
//   refuse               refuse new connections (HTTP 503) for P.ms, and destroy this one
//   stats                result {connections, auths, orders: [{order_id, connection}]}
//   silence              no answer, ever
//   anything else        error -32601 "method not found"
'use strict';
const { WebSocketServer } = require('ws');

const stats = { connections: 0, auths: 0, orders: [] };
let refuseUntil = process.argv[3] === 'refuse' ? Infinity : 0;
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.argv[2] || 0),
  verifyClient: (info, cb) => (Date.now() < refuseUntil ? cb(false, 503, 'maintenance') : cb(true)),
});

wss.on('listening', () => {
  process.stdout.write('LISTENING ' + wss.address().port + '\n');
});

wss.on('connection', (ws) => {
  const conn = ++stats.connections;
  let authed = false;
  let tokens = 0;
  const refreshTokens = new Set();
  let heartbeat = null;
  ws.on('close', () => heartbeat && clearInterval(heartbeat));
  const reply = (id, result) => ws.send(JSON.stringify({ jsonrpc: '2.0', id, result }));
  const fail = (id, code, message) => ws.send(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }));
  const grant = (id) => {
    tokens++;
    const refresh = 'ref-' + conn + '-' + tokens;
    refreshTokens.add(refresh);
    authed = true;
    stats.auths++;
    reply(id, { access_token: 'acc-' + conn + '-' + tokens, refresh_token: refresh, expires_in: 900, token_type: 'bearer', scope: 'session:node' });
  };

  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== 'object' || typeof msg.method !== 'string') return;
    const p = msg.params || {};
    const id = msg.id;
    if (msg.method.startsWith('private/') && !authed) {
      fail(id, 13009, 'unauthorized');
      return;
    }
    switch (msg.method) {
      case 'public/auth':
        if (p.grant_type === 'client_credentials' && p.client_id === 'zenws-node' && p.client_secret === 'node-secret') {
          grant(id);
        } else if (p.grant_type === 'refresh_token' && refreshTokens.has(p.refresh_token)) {
          grant(id);
        } else {
          fail(id, 13004, 'invalid_credentials');
        }
        break;
      case 'public/set_heartbeat': {
        const every = Math.max(Number(p.interval) || 10, 0.05) * 1000;
        if (heartbeat) clearInterval(heartbeat);
        heartbeat = setInterval(() => {
          ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'heartbeat', params: { type: 'test_request' } }));
        }, every);
        reply(id, 'ok');
        break;
      }
      case 'public/test':
        reply(id, { version: 'node' });
        break;
      case 'private/buy': {
        const order = { order_id: 'o' + (stats.orders.length + 1), connection: conn };
        stats.orders.push(order);
        reply(id, { order: { order_id: order.order_id, instrument_name: p.instrument_name, amount: p.amount } });
        break;
      }
      case 'refuse':
        refuseUntil = Date.now() + (Number(p.ms) || 1000);
        ws.terminate();
        break;
      case 'stats':
        reply(id, stats);
        break;
      case 'silence':
        break;
      default:
        if (msg.method.startsWith('private/')) {
          reply(id, {});
        } else {
          fail(id, -32601, 'method not found');
        }
    }
  });
  ws.on('error', (e) => process.stderr.write('deribit: ' + e.message + '\n'));
});

wss.on('error', (e) => {
  process.stderr.write('deribit: ' + e.message + '\n');
  process.exit(1);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
