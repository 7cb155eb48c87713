// A Binance-like venue in Node.js on the `ws` library that publishes one
// sequenced stream on every connection subscribed to it, and kills those
// connections itself, for zenws's redundant-feed test. It listens on
// 127.0.0.1 (port from argv[2], 0 = any), prints "LISTENING <port>" on
// stdout, logs to stderr, and exits when stdin closes.
//
// Every millisecond it publishes the next diff depth event of STREAM as a
// combined-stream event, the same bytes to every subscribed connection:
//   {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","U":first,"u":last,"b":[],"a":[]}}
// where each event's U is the previous event's u + 1 (and u = U + 0..2).
// Up to argv[3] times (default 100) it terminates one subscribed
// connection abruptly (no close frame), picked at random, once every
// subscribed connection has received at least argv[4] events (default 50)
// since it subscribed and at least argv[5] connections are open (default
// 0; the test's clients and its control connection): never two copies
// lost at once, as a test of "a lost connection costs no gap" needs.
//
// Requests are Binance's {"method":M,"params":P,"id":N}, by M:
//   SUBSCRIBE    {"result":null,"id":N}
//   UNSUBSCRIBE  {"result":null,"id":N}
//   STATS        {"result":{kills, published, last, subscribed},"id":N}
//   STOP         stops publishing; {"result":{kills, published, last},"id":N}
'use strict';
const { WebSocketServer } = require('ws');

const STREAM = 'btcusdt@depth@100ms';
const maxKills = Number(process.argv[3] || 100);
const settleEvents = Number(process.argv[4] || 50);
const minOpen = Number(process.argv[5] || 0);
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2] || 0) });
const subs = new Map(); // ws -> events received since it subscribed
const stats = { kills: 0, published: 0, last: 0 };
let running = true;

wss.on('listening', () => {
  process.stdout.write('LISTENING ' + wss.address().port + '\n');
});

wss.on('connection', (ws) => {
  const send = (v) => ws.send(JSON.stringify(v));
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
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
      case 'SUBSCRIBE':
        send({ result: null, id });
        if (params.includes(STREAM)) subs.set(ws, 0);
        break;
      case 'UNSUBSCRIBE':
        send({ result: null, id });
        if (params.includes(STREAM)) subs.delete(ws);
        break;
      case 'STATS':
        send({ result: Object.assign({ subscribed: subs.size }, stats), id });
        break;
      case 'STOP':
        running = false;
        send({ result: stats, id });
        break;
      default:
        send({ error: { code: -1100, msg: "Illegal characters found in parameter 'method'" }, id });
    }
  });
  ws.on('close', () => subs.delete(ws));
  ws.on('error', (e) => process.stderr.write('seqfeed: ' + e.message + '\n'));
});

setInterval(() => {
  if (!running || subs.size === 0) return;
  const first = stats.last + 1;
  const last = first + Math.floor(Math.random() * 3);
  stats.last = last;
  stats.published++;
  const frame = JSON.stringify({ stream: STREAM, data: { e: 'depthUpdate', U: first, u: last, b: [], a: [] } });
  for (const [ws, n] of subs) {
    ws.send(frame);
    subs.set(ws, n + 1);
  }
  const ready = subs.size >= 2 && wss.clients.size >= minOpen && [...subs.values()].every((n) => n >= settleEvents);
  if (stats.kills < maxKills && ready) {
    const victims = [...subs.keys()];
    const v = victims[Math.floor(Math.random() * victims.length)];
    subs.delete(v);
    stats.kills++;
    v.terminate(); // its 'close' comes later: it still counts in wss.clients for a while
    for (const ws of subs.keys()) subs.set(ws, 0); // the next kill waits settleEvents more events

  }
}, 1);

wss.on('error', (e) => {
  process.stderr.write('seqfeed: ' + e.message + '\n');
  process.exit(1);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
