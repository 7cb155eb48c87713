// A venue for review13, written with Node's ws. Control on stdin, one
// command a line; answers on stdout as JSON lines.
//   mode: argv[2] = "deribit" | "binance"
//   stdin: "drop" | "down <ms>" | "subs" | "stats" | "ping <everyMs>" | "push <json>"
'use strict';
const http = require('http');
const WebSocket = require('ws');
const readline = require('readline');

const mode = process.argv[2] || 'deribit';
let downUntil = 0;
let nextId = 0;
const conns = new Map(); // id -> {ws, subs:Set}
const frames = []; // {t, kind:'data'|'pong', conn, text}
const subReqs = []; // {t, conn, channels}
let pingTimer = null;

const server = http.createServer();
const wss = new WebSocket.Server({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  if (Date.now() < downUntil) {
    socket.write('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

wss.on('connection', (ws) => {
  const id = ++nextId;
  const c = { ws, subs: new Set() };
  conns.set(id, c);
  ws.on('close', () => conns.delete(id));
  ws.on('error', () => {});
  ws.on('pong', () => frames.push({ t: Date.now(), kind: 'pong', conn: id }));
  ws.on('message', (data, isBinary) => {
    const text = data.toString();
    frames.push({ t: Date.now(), kind: 'data', conn: id, text });
    let m;
    try { m = JSON.parse(text); } catch (e) { return; }
    if (m === null || typeof m !== 'object' || m.id === undefined) return;
    const reply = (o) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(o)); };
    if (mode === 'binance') {
      if (m.method === 'SUBSCRIBE' || m.method === 'UNSUBSCRIBE') {
        const chs = Array.isArray(m.params) ? m.params : [];
        subReqs.push({ t: Date.now(), conn: id, channels: chs, op: m.method });
        const bad = chs.filter((ch) => ch.startsWith('bad'));
        if (bad.length && m.method === 'SUBSCRIBE') {
          reply({ id: m.id, error: { code: 2, msg: 'Invalid request: unknown stream ' + bad.join(',') } });
          return;
        }
        for (const ch of chs) { if (m.method === 'SUBSCRIBE') c.subs.add(ch); else c.subs.delete(ch); }
        reply({ id: m.id, result: null });
        return;
      }
      if (m.method === 'ERR') { reply({ id: m.id, error: { code: 2, msg: 'Invalid JSON: expected value' } }); return; }
      reply({ id: m.id, result: [] });
      return;
    }
    // deribit
    if (m.method === 'public/subscribe' || m.method === 'private/subscribe' ||
        m.method === 'public/unsubscribe' || m.method === 'private/unsubscribe') {
      const chs = (m.params && m.params.channels) || [];
      const unsub = m.method.endsWith('unsubscribe');
      subReqs.push({ t: Date.now(), conn: id, channels: chs, op: m.method });
      const ok = [];
      for (const ch of chs) {
        if (!unsub && ch.startsWith('bad.')) continue;
        ok.push(ch);
        if (unsub) c.subs.delete(ch); else c.subs.add(ch);
      }
      if (ok.length === 0 && chs.length > 0) {
        reply({ jsonrpc: '2.0', id: m.id, error: { code: 11050, message: 'bad_request', data: { channels: chs } } });
        return;
      }
      reply({ jsonrpc: '2.0', id: m.id, result: ok });
      return;
    }
    if (m.method === 'public/test') { reply({ jsonrpc: '2.0', id: m.id, result: { version: 'node' } }); return; }
    reply({ jsonrpc: '2.0', id: m.id, result: 'ok' });
  });
});

function maxIn(ts, w) {
  let best = 0, j = 0;
  for (let i = 0; i < ts.length; i++) {
    while (ts[i] - ts[j] >= w) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [cmd, ...rest] = line.trim().split(' ');
  const arg = rest.join(' ');
  switch (cmd) {
    case 'drop':
      for (const c of conns.values()) c.ws.terminate();
      console.log(JSON.stringify({ ok: 'drop' }));
      break;
    case 'down':
      downUntil = Date.now() + Number(arg);
      for (const c of conns.values()) c.ws.terminate();
      console.log(JSON.stringify({ ok: 'down' }));
      break;
    case 'subs': {
      let newest = -1;
      for (const id of conns.keys()) newest = Math.max(newest, id);
      const s = newest >= 0 ? [...conns.get(newest).subs].sort() : [];
      console.log(JSON.stringify({ subs: s, conns: conns.size }));
      break;
    }
    case 'stats': {
      const data = frames.filter((f) => f.kind === 'data').map((f) => f.t);
      const all = frames.map((f) => f.t);
      const badReqs = subReqs.filter((r) => r.op.endsWith('subscribe') && !r.op.endsWith('unsubscribe') && r.channels.some((c) => c.startsWith('bad'))).length;
      console.log(JSON.stringify({ data: data.length, pongs: all.length - data.length, maxData: maxIn(data, 1000), maxAll: maxIn(all, 1000), badReqs, upgrades: nextId }));
      break;
    }
    case 'ping':
      if (pingTimer) clearInterval(pingTimer);
      pingTimer = setInterval(() => { for (const c of conns.values()) c.ws.ping('p'); }, Number(arg));
      console.log(JSON.stringify({ ok: 'ping' }));
      break;
    case 'push':
      for (const c of conns.values()) c.ws.send(arg);
      console.log(JSON.stringify({ ok: 'push' }));
      break;
    case 'quit':
      process.exit(0);
  }
});
rl.on('close', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
