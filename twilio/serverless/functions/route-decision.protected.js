// Twilio Function: forwards Studio's request to route-decision's Function URL with the
// shared secret, within a time budget under Twilio's 10 s, and answers Studio with a safe
// fallback (to an agent) when the Lambda fails, is slow or answers something unusable, so
// a customer is never stuck.
//
// Protected (the .protected suffix): Twilio checks every request's X-Twilio-Signature, so
// only your own account's Studio flows can call it. It holds the shared secret; a public
// Function would hand decisions, with that secret attached, to anyone who found its URL.
// Call it from Studio's Run Function widget, which signs its call (`ROUTE_VIA=function`
// when filling the flow: see fill-flow.mjs).
//
// Environment (.env or the Console): ROUTE_DECISION_URL, PROXY_SHARED_SECRET,
// ROUTE_DECISION_BUDGET_MS (default 8000, at most 9000), FALLBACK_TRANSITION (default agent).

const FORWARDED = ['From', 'identifier', 'user_id', 'email', 'phone', 'channel', 'traits'];
const DEFAULT_BUDGET_MS = 8000;
const MAX_BUDGET_MS = 9000;

/** What Studio gets when route-decision cannot answer: the same shape as a decision. */
function fallback(context, reason) {
  return {
    transition: context.FALLBACK_TRANSITION || 'agent',
    rule: 'proxy_fallback',
    fallback: true,
    profile_found: false,
    attributes: {},
    reason,
  };
}

function budget(context) {
  const configured = Number(context.ROUTE_DECISION_BUDGET_MS);
  return Number.isFinite(configured) && configured > 0 ? Math.min(configured, MAX_BUDGET_MS) : DEFAULT_BUDGET_MS;
}

exports.handler = async function handler(context, event, callback) {
  const fields = {};
  for (const name of FORWARDED) {
    if (event[name] !== undefined && event[name] !== '') fields[name] = event[name];
  }
  const limit = budget(context);
  let answer;
  try {
    const response = await fetch(context.ROUTE_DECISION_URL, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${context.PROXY_SHARED_SECRET}` },
      body: JSON.stringify(fields),
      signal: AbortSignal.timeout(limit),
    });
    const text = await response.text();
    if (!response.ok) {
      answer = fallback(context, `route-decision answered HTTP ${response.status}`);
    } else {
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      answer = body && typeof body.transition === 'string' ? body : fallback(context, 'route-decision answered without a transition');
    }
  } catch (error) {
    const slow = error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    answer = fallback(context, slow ? `route-decision did not answer within ${limit} ms` : 'route-decision could not be reached');
  }
  // Never log the customer's number: the reason is enough to debug.
  if (answer.rule === 'proxy_fallback') console.error(`studio-router proxy fallback: ${answer.reason}`);
  return callback(null, answer);
};

exports.fallback = fallback;
