// bench/server.js - the node:http server `make bench` measures, bare, under
// cruddur (LD_PRELOAD) and under OpenTelemetry JS (--require ./otel.js).
// Answers every request with a small JSON body. PORTFILE: where to write
// the port; COUNTFILE: where the number of requests answered is written on
// SIGTERM/SIGINT, before a normal exit (so exit handlers flush spans).
'use strict';
const http = require('http');
const fs = require('fs');

let served = 0;
const body = '{"ok":true}\n';
const server = http.createServer((req, res) => {
  served++;
  res.writeHead(200, {'Content-Type': 'application/json', 'Content-Length': body.length});
  res.end(body);
});
server.keepAliveTimeout = 60000;

async function stop() {
  if (process.env.COUNTFILE) fs.writeFileSync(process.env.COUNTFILE, String(served));
  server.close();
  server.closeAllConnections();
  // OpenTelemetry JS: flush the BatchSpanProcessor (set by otel.js).
  if (global.__benchOtelShutdown) {
    try { await global.__benchOtelShutdown(); } catch (e) { console.error('otel shutdown:', e); }
  }
  process.exit(0); // exit(3): cruddur flushes its queue in its atexit handler
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(+process.env.PORT || 0, '127.0.0.1', () => {
  const pf = process.env.PORTFILE;
  if (pf) {
    fs.writeFileSync(pf + '.tmp', String(server.address().port));
    fs.renameSync(pf + '.tmp', pf);
  }
});
