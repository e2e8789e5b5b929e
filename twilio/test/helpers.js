// Shared by the proxy tests: a local HTTP server standing in for the Lambda Function URLs,
// the Twilio Functions runtime's Response class, and a way to call a handler.
const http = require('node:http');

// The runtime provides a global Twilio.Response; this one records what a handler sets.
globalThis.Twilio = {
  Response: class Response {
    constructor() {
      this.statusCode = 200;
      this.headers = {};
      this.body = undefined;
    }
    setStatusCode(code) {
      this.statusCode = code;
    }
    appendHeader(name, value) {
      this.headers[name.toLowerCase()] = value;
    }
    setBody(body) {
      this.body = body;
    }
  },
};

/** Serves `behaviour(path)` -> {status, body, delayMs}; records every request. */
async function standIn(behaviour) {
  const received = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push({ method: request.method, path: request.url, headers: request.headers, body });
      const { status = 200, body: answer = '', delayMs = 0 } = behaviour(request.url);
      const timer = setTimeout(() => {
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(typeof answer === 'string' ? answer : JSON.stringify(answer));
      }, delayMs);
      response.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    close: () => new Promise((resolve) => server.closeAllConnections() || server.close(resolve)),
  };
}

/** A port nothing listens on. */
async function closedPort() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Calls a Twilio Function handler; resolves with what it passed to the callback, and how long it took. */
function invoke(handler, context, event) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    handler(context, event, (error, response) => (error ? reject(error) : resolve({ response, elapsedMs: Date.now() - started })));
  });
}

module.exports = { standIn, closedPort, invoke };
