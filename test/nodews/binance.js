// A Binance-like venue in Node.js on the `ws` library, for zenws's tests. It
// counts what each connection sends the way Binance does: every text and
// binary message, ping and pong, in any rolling second (1000 ms, measured
// as each arrives); past the limit (argv[3], default 5) it closes that
// connection with 1008 (policy violation), as Binance does. It listens on
// 127.0.0.1 (port from argv[2], 0 = any), prints "LISTENING <port>" on
// stdout, logs to stderr, and exits when stdin closes.
//
// Requests are Binance's {"method":M,"params":P,"id":N}, by M:
//   SUBSCRIBE    {"result":null,"id":N}, then 2 combined-stream events per
//                stream: {"stream":s,"data":{"e":"trade","s":s,"seq":i}}; when a
//                stream contains "invalid", Binance's error instead:
//                {"error":{"code":2,"msg":"Invalid request: unknown stream <s>"},"id":N}
//   UNSUBSCRIBE  {"result":null,"id":N}
//   STATS        {"result":{connections, messages, maxInWindow, closed1008},"id":N}
//                (the STATS request counts like any other message)
//   otherwise    {"error":{"code":-1100,"msg":"Illegal characters found in parameter 'method'"},"id":N}
'use strict';
const { WebSocketServer } = require('ws');

const limit = Number(process.argv[3] || 5);
const windowMs = 1000;
const stats = { connections: 0, messages: 0, maxInWindow: 0, closed1008: 0 };
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2] || 0) });

wss.on('listening', () => {
  process.stdout.write('LISTENING ' + wss.address().port + '\n');
});

wss.on('connection', (ws) => {
  stats.connections++;
  const arrivals = [];
  let closed = false;
  // count reports whether the connection may go on.
  const count = () => {
    if (closed) return false;
    const now = Number(process.hrtime.bigint() / 1000n) / 1000; // ms
    arrivals.push(now);
    while (arrivals.length && arrivals[0] <= now - windowMs) arrivals.shift();
    stats.messages++;
    stats.maxInWindow = Math.max(stats.maxInWindow, arrivals.length);
    if (arrivals.length > limit) {
      closed = true;
      stats.closed1008++;
      process.stderr.write('binance: ' + arrivals.length + ' messages in one second, closing with 1008\n');
      ws.close(1008, 'Too many messages');
      return false;
    }
    return true;
  };
  ws.on('ping', count);
  ws.on('pong', count);
  const send = (v) => ws.send(JSON.stringify(v));
  ws.on('message', (data, isBinary) => {
    if (!count() || isBinary) return;
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    const id = msg.id;
    const params = Array.isArray(msg.params) ? msg.params : [];
    switch (msg.method) {
      case 'SUBSCRIBE': {
        const bad = params.find((s) => String(s).includes('invalid'));
        if (bad !== undefined) {
          send({ error: { code: 2, msg: 'Invalid request: unknown stream ' + bad }, id });
          return;
        }
        send({ result: null, id });
        for (let i = 1; i <= 2; i++) {
          for (const s of params) send({ stream: s, data: { e: 'trade', s, seq: i } });
        }
        break;
      }
      case 'UNSUBSCRIBE':
        send({ result: null, id });
        break;
      case 'STATS':
        send({ result: stats, id });
        break;
      default:
        send({ error: { code: -1100, msg: "Illegal characters found in parameter 'method'" }, id });
    }
  });
  ws.on('error', (e) => process.stderr.write('binance: ' + e.message + '\n'));
});

wss.on('error', (e) => {
  process.stderr.write('binance: ' + e.message + '\n');
  process.exit(1);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
