// A hostile venue for test/reviewfailover: two WebSocket servers on
// 127.0.0.1 (Node's ws). Each request frame is reported on stdout
// ("FRAME <server> <method>"), then: private/* ends the connection with
// ws.terminate() (no close frame); public/* closes it with 1008 and the
// request URL (its query: the client's secret) as the reason. It prints
// "LISTENING <port1> <port2>" once both listen, and exits when stdin closes.
'use strict';
const { WebSocketServer } = require('ws');

const servers = [0, 1].map((i) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws, req) => {
    ws.on('message', (data) => {
      let msg;
      try { msg = JSON.parse(data.toString()); } catch (e) { return; }
      const method = String(msg.method || '');
      process.stdout.write(`FRAME ${i} ${method}\n`);
      if (method.startsWith('private/')) {
        ws.terminate();
      } else {
        ws.close(1008, req.url.slice(0, 120));
      }
    });
  });
  return wss;
});

let listening = 0;
for (const wss of servers) {
  wss.on('listening', () => {
    listening++;
    if (listening === servers.length) {
      process.stdout.write(`LISTENING ${servers.map((s) => s.address().port).join(' ')}\n`);
    }
  });
}
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
