// A Node.js ws venue of review13d's own: JSON-RPC answers (subscribe
// confirms every channel, "hold" is never answered), and commands on stdin:
// "send <conn index> <json>" writes json on that connection. Prints
// "listening <port>" once ready and "conn <n>" for every connection. Exits
// when stdin closes.
const WebSocket = require('ws');
const readline = require('readline');
const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0 });
const conns = [];
wss.on('listening', () => console.log('listening ' + wss.address().port));
wss.on('connection', (ws) => {
  const idx = conns.length;
  conns.push(ws);
  console.log('conn ' + idx);
  ws.on('message', (data) => {
    let r;
    try { r = JSON.parse(data.toString()); } catch (e) { return; }
    if (r.id === undefined || r.method === 'hold') return;
    let result = 'ok';
    if (/subscribe$/.test(r.method)) result = (r.params && r.params.channels) || [];
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: r.id, result }));
  });
});
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const m = /^send (\d+) (.*)$/.exec(line);
  if (m && conns[+m[1]]) { conns[+m[1]].send(m[2], () => console.log('sent ' + m[1])); }
});
rl.on('close', () => process.exit(0));
