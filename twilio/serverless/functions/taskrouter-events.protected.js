// Twilio Function: forwards TaskRouter event callbacks to wrap-up-ingest with the shared
// secret. `.protected`: Twilio checks TaskRouter's signature before this runs. Point the
// Workspace's Event Callback URL here when the Lambda should not be called by Twilio directly.
//
// Environment: WRAP_UP_INGEST_URL, PROXY_SHARED_SECRET, WRAP_UP_BUDGET_MS (default 9000).
// Keep wrap-up-ingest's DELIVERY_DEADLINE_MS under the budget (e.g. 8000).

const DEFAULT_BUDGET_MS = 9000;

function reply(status, body) {
  const response = new Twilio.Response();
  response.setStatusCode(status);
  if (body !== undefined) {
    response.appendHeader('Content-Type', 'application/json');
    response.setBody(body);
  }
  return response;
}

exports.handler = async function handler(context, event, callback) {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(event)) {
    // `request` is the runtime's (headers, cookies), not TaskRouter's.
    if (name !== 'request' && value !== null && typeof value !== 'object') form.append(name, String(value));
  }
  const limit = Math.min(Number(context.WRAP_UP_BUDGET_MS) || DEFAULT_BUDGET_MS, DEFAULT_BUDGET_MS);
  try {
    const response = await fetch(context.WRAP_UP_INGEST_URL, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${context.PROXY_SHARED_SECRET}` },
      body: form.toString(),
      signal: AbortSignal.timeout(limit),
    });
    await response.arrayBuffer();
    if (response.ok) return callback(null, reply(204));
    console.error(`wrap-up-ingest answered HTTP ${response.status}`);
    return callback(null, reply(502, { error: { code: 'delivery_failed', message: `wrap-up-ingest answered HTTP ${response.status}` } }));
  } catch (error) {
    const slow = error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    const message = slow ? `wrap-up-ingest did not answer within ${limit} ms` : 'wrap-up-ingest could not be reached';
    console.error(message);
    return callback(null, reply(slow ? 504 : 502, { error: { code: slow ? 'upstream_timeout' : 'upstream_error', message } }));
  }
};
