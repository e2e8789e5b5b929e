// Segment's official Node client, unchanged, against the sandbox's Tracking API; then the
// Profile API shows what it sent. Run by compat/run.sh with SANDBOX_SEGMENT_URL set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Analytics } from '@segment/analytics-node';

const SEGMENT_URL = process.env.SANDBOX_SEGMENT_URL;
const TOKEN = process.env.SANDBOX_PROFILE_TOKEN ?? 'sandbox-profile-token';
const SPACE = process.env.SANDBOX_SPACE_ID ?? 'spa_sandbox';

async function traits(identifier) {
  const response = await fetch(
    `${SEGMENT_URL}/v1/spaces/${SPACE}/collections/users/profiles/${identifier}/traits?limit=200`,
    { headers: { authorization: `Basic ${Buffer.from(`${TOKEN}:`).toString('base64')}` } },
  );
  assert.equal(response.status, 200, `${identifier}: HTTP ${response.status}`);
  return (await response.json()).traits;
}

test('the official Node client is accepted and its events compute traits', async () => {
  const errors = [];
  const analytics = new Analytics({ writeKey: 'node-write-key', host: SEGMENT_URL, path: '/v1/batch', maxRetries: 1 });
  analytics.on('error', (error) => errors.push(error));
  analytics.identify({ userId: 'node-user-1', traits: { phone: '+15555550177', plan: 'team' } });
  analytics.page({ userId: 'node-user-1', name: 'Docs', properties: { path: '/docs/node-client' } });
  analytics.track({
    userId: 'node-user-1',
    event: 'Flex - Wrap Up Completed',
    properties: { topic: 'billing', sentiment: 'positive' },
  });
  await analytics.closeAndFlush({ timeout: 5000 });
  assert.deepEqual(errors, []);

  for (const identifier of ['user_id:node-user-1', 'phone:%2B15555550177']) {
    const got = await traits(identifier);
    assert.equal(got.plan, 'team', identifier);
    assert.equal(got.docs_last_2_days, 1, identifier);
    assert.equal(got.last_interaction_topic, 'billing', identifier);
    assert.equal(got.sentiment_in_last_interaction, 'positive', identifier);
  }
});
