#!/usr/bin/env node
// Fills studio-flow.json's placeholders from the environment and prints the flow, ready for
// the Studio v2 API (`Definition`) or the Console's import:
//
//   ROUTE_DECISION_URL='https://studio:<secret>@<id>.lambda-url.<region>.on.aws/' \
//   FLEX_WORKFLOW_SID=WW... FLEX_CHAT_CHANNEL_SID=TC... FLEX_VOICE_CHANNEL_SID=TC... \
//   BOT_GREETING='Hi! Our assistant will help you.' \
//   node twilio/fill-flow.mjs > flow.json
//
// It refuses to print a flow with a placeholder left or a value of the wrong shape.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const PLACEHOLDERS = {
  ROUTE_DECISION_URL: (v) => /^https:\/\/\S+$/.test(v) || 'must be an https:// URL (the Function URL, or the Twilio Functions proxy)',
  FLEX_WORKFLOW_SID: (v) => /^WW[0-9a-f]{32}$/.test(v) || 'must be a TaskRouter workflow SID (WW + 32 hex)',
  FLEX_CHAT_CHANNEL_SID: (v) => /^TC[0-9a-f]{32}$/.test(v) || 'must be a task channel SID (TC + 32 hex) for messaging',
  FLEX_VOICE_CHANNEL_SID: (v) => /^TC[0-9a-f]{32}$/.test(v) || 'must be a task channel SID (TC + 32 hex) for voice',
  BOT_GREETING: (v) => v.trim().length > 0 || 'must not be empty',
};

/** The flow with every __NAME__ replaced from `values`, or an error listing what is wrong. */
export function fillFlow(template, values) {
  const problems = [];
  for (const [name, check] of Object.entries(PLACEHOLDERS)) {
    const value = values[name];
    if (value === undefined || value === '') {
      problems.push(`${name} is not set`);
      continue;
    }
    const verdict = check(value);
    if (verdict !== true) problems.push(`${name} ${verdict}`);
  }
  if (problems.length > 0) throw new Error(problems.join('\n'));
  // Values go into JSON strings: escape them as JSON would.
  const filled = template.replace(/__([A-Z_]+)__/g, (whole, name) =>
    name in PLACEHOLDERS ? JSON.stringify(values[name]).slice(1, -1) : whole,
  );
  const left = filled.match(/__[A-Z_]+__/g);
  if (left) throw new Error(`placeholders left: ${[...new Set(left)].join(', ')}`);
  return JSON.parse(filled);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const template = readFileSync(new URL('./studio-flow.json', import.meta.url), 'utf8');
  try {
    process.stdout.write(`${JSON.stringify(fillFlow(template, process.env), null, 2)}\n`);
  } catch (error) {
    process.stderr.write(`fill-flow: ${error.message}\n`);
    process.exit(1);
  }
}
