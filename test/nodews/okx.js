// An OKX-like venue (our subset of the OKX v5 WebSocket API) in Node.js on
// the `ws` library: an implementation independent of transport/wstest's
// WithOKX, for zenws's tests. It listens on 127.0.0.1 (port from argv[2],
// 0 = any), prints "LISTENING <port>" on stdout, logs to stderr, and exits
// when stdin closes (its parent went away).
//
// Options follow the port as key=value arguments:
//   apiKey=K secretKey=S passphrase=P  the one account logins are checked
//                                      against; without apiKey any
//                                      well-formed login succeeds
//   idle=MS       close a connection silent for MS ms (default 30000)
//   limit=N       login/subscribe/unsubscribe requests allowed per
//                 connection in any sliding window (default 480)
//   window=MS     that window (default 3600000, an hour)
//   loginErrorId=0  a refused login's error event carries no "id" (as OKX
//                 may answer); default 1
//
// Per connection (connId: 8 random hex digits):
//   "ping"        answered "pong"
//   silence       for idle ms: close 4004 "no data in 30s"
//   login         {"id","op":"login","args":[{apiKey,passphrase,timestamp,sign}]},
//                 sign = base64(HMAC-SHA256(secretKey, timestamp+"GET"+"/users/self/verify")),
//                 timestamp in Unix seconds within 30 s of the clock, else 60006
//                 "Timestamp request expired"; wrong key/passphrase/sign: 60009
//                 "Login failed."; success {"id","event":"login","code":"0","msg":"","connId"}
//   subscribe / unsubscribe
//                 {"id","op":...,"args":[{channel,instId},...]}: per arg in order
//                 {"id","event":op,"arg","connId"}, or 60018 for an unknown channel
//                 (or a public one without instId), or 60011 "Please log in" for
//                 a private channel before login. Public: tickers books books5
//                 trades bbo-tbt candle1m; private: orders account positions.
//                 Each successful subscribe is followed by one data push
//                 {"arg":arg,"data":[{"seq":N}]} for that arg (N counts pushes
//                 per channel/instId across the venue).
//   rate limit    past `limit` requests in `window`: 60014 "Requests too frequent."
//                 (not counted, no close)
//   publish       test-only: {"id","op":"publish","args":[{channel,instId}]}: one
//                 data push to every connection subscribed to that exact arg;
//                 answered {"id","event":"publish","arg","count":N,"connId"}
//   stats         test-only: {"id","op":"stats"}: {"id","event":"stats","connections",
//                 "pings","logins","idleCloses","rateLimited","connId"}
//   otherwise     60012 "Invalid request" (also for a bad "id": 1 to 32 letters
//                 and digits, echoed in every answer when valid)
// Error events: {"id","event":"error","code","msg","connId"}.
'use strict';
const crypto = require('crypto');
const { WebSocketServer } = require('ws');

const opts = {};
for (const a of process.argv.slice(3)) {
  const i = a.indexOf('=');
  if (i > 0) opts[a.slice(0, i)] = a.slice(i + 1);
}
const idleMs = Number(opts.idle || 30000);
const limit = Number(opts.limit || 480);
const windowMs = Number(opts.window || 3600000);
const PUBLIC = new Set(['tickers', 'books', 'books5', 'trades', 'bbo-tbt', 'candle1m']);
const PRIVATE = new Set(['orders', 'account', 'positions']);

const stats = { connections: 0, pings: 0, logins: 0, idleCloses: 0, rateLimited: 0 };
const seqs = new Map(); // channel\0instId -> pushes so far
const conns = new Set();
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2] || 0) });

wss.on('listening', () => {
  process.stdout.write('LISTENING ' + wss.address().port + '\n');
});

const sign = (secret, ts) =>
  crypto.createHmac('sha256', secret).update(ts + 'GET' + '/users/self/verify').digest('base64');

const same = (a, b) => {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && crypto.timingSafeEqual(x, y);
};

const argKey = (a) => a.channel + '\0' + (a.instId || '');
const argOut = (a) => (a.instId ? { channel: a.channel, instId: a.instId } : { channel: a.channel });

wss.on('connection', (ws) => {
  stats.connections++;
  const st = { connId: crypto.randomBytes(4).toString('hex'), loggedIn: false, subs: new Map(), times: [], ws };
  conns.add(st);
  const send = (v) => ws.send(JSON.stringify(v));
  const event = (id, ev) => send(Object.assign(id ? { id } : {}, ev, { connId: st.connId }));
  const error = (id, code, msg) => event(id, { event: 'error', code, msg });
  const push = (a) => {
    const k = argKey(a);
    const n = (seqs.get(k) || 0) + 1;
    seqs.set(k, n);
    return JSON.stringify({ arg: argOut(a), data: [{ seq: n }] });
  };

  let idle;
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      stats.idleCloses++;
      ws.close(4004, 'no data in 30s');
    }, idleMs);
  };
  touch();
  ws.on('close', () => {
    clearTimeout(idle);
    conns.delete(st);
  });

  const admit = () => {
    const now = Date.now();
    while (st.times.length && now - st.times[0] >= windowMs) st.times.shift();
    if (st.times.length >= limit) return false;
    st.times.push(now);
    return true;
  };

  const login = (id, args) => {
    const p = Array.isArray(args) && args.length === 1 ? args[0] : null;
    if (!p || typeof p !== 'object' || ['apiKey', 'passphrase', 'timestamp', 'sign'].some((k) => typeof p[k] !== 'string')) {
      return error(id, '60012', 'Invalid request');
    }
    const ts = Number(p.timestamp);
    if (p.timestamp === '' || !Number.isFinite(ts)) return error(id, '60012', 'Invalid request');
    if (Math.abs(ts - Date.now() / 1000) > 30) return error(id, '60006', 'Timestamp request expired');
    if (opts.apiKey !== undefined) {
      const ok = same(p.apiKey, opts.apiKey) && same(p.passphrase, opts.passphrase || '') &&
        same(p.sign, sign(opts.secretKey || '', p.timestamp));
      if (!ok) return error(opts.loginErrorId === '0' ? undefined : id, '60009', 'Login failed.');
    }
    st.loggedIn = true;
    stats.logins++;
    event(id, { event: 'login', code: '0', msg: '' });
  };

  const subscribe = (id, op, args) => {
    if (!Array.isArray(args) || args.length === 0) return error(id, '60012', 'Invalid request');
    for (const a of args) {
      if (!a || typeof a !== 'object' || typeof a.channel !== 'string') {
        error(id, '60012', 'Invalid request');
        continue;
      }
      const instId = typeof a.instId === 'string' ? a.instId : '';
      if (PRIVATE.has(a.channel)) {
        if (!st.loggedIn) {
          error(id, '60011', 'Please log in');
          continue;
        }
      } else if (!PUBLIC.has(a.channel) || instId === '') {
        error(id, '60018', "Wrong URL or channel:" + a.channel + ",instId:" + instId + " doesn't exist.");
        continue;
      }
      const arg = { channel: a.channel, instId };
      if (op === 'subscribe') st.subs.set(argKey(arg), arg);
      else st.subs.delete(argKey(arg));
      event(id, { event: op, arg: argOut(arg) });
      if (op === 'subscribe') ws.send(push(arg));
    }
  };

  ws.on('message', (data, isBinary) => {
    touch();
    const text = data.toString();
    if (!isBinary && text === 'ping') {
      stats.pings++;
      ws.send('pong');
      return;
    }
    let msg = null;
    try {
      msg = isBinary ? null : JSON.parse(text);
    } catch (e) {
      msg = null;
    }
    if (!msg || typeof msg !== 'object' || Array.isArray(msg) || typeof msg.op !== 'string') {
      return error(undefined, '60012', 'Invalid request');
    }
    let id;
    if (msg.id !== undefined && msg.id !== null) {
      if (typeof msg.id !== 'string' || !/^[A-Za-z0-9]{1,32}$/.test(msg.id)) return error(undefined, '60012', 'Invalid request');
      id = msg.id;
    }
    switch (msg.op) {
      case 'login':
      case 'subscribe':
      case 'unsubscribe':
        if (!admit()) {
          stats.rateLimited++;
          return error(id, '60014', 'Requests too frequent.');
        }
        if (msg.op === 'login') login(id, msg.args);
        else subscribe(id, msg.op, msg.args);
        break;
      case 'publish': {
        const a = Array.isArray(msg.args) && msg.args[0];
        if (!a || typeof a.channel !== 'string') return error(id, '60012', 'Invalid request');
        const arg = { channel: a.channel, instId: typeof a.instId === 'string' ? a.instId : '' };
        const frame = push(arg);
        let count = 0;
        for (const c of conns) {
          if (c.subs.has(argKey(arg))) {
            c.ws.send(frame);
            count++;
          }
        }
        event(id, { event: 'publish', arg: argOut(arg), count });
        break;
      }
      case 'stats':
        event(id, Object.assign({ event: 'stats' }, stats));
        break;
      default:
        error(id, '60012', 'Invalid request');
    }
  });
  ws.on('error', (e) => process.stderr.write('okx: ' + e.message + '\n'));
});

wss.on('error', (e) => {
  process.stderr.write('okx: ' + e.message + '\n');
  process.exit(1);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
