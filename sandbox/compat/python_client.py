"""Segment's official Python client, unchanged, against the sandbox's Tracking API; then the
Profile API shows what it sent. Run by compat/run.sh with SANDBOX_SEGMENT_URL set."""

import base64
import json
import os
import sys
import urllib.request

from segment.analytics import Client

SEGMENT_URL = os.environ["SANDBOX_SEGMENT_URL"]
TOKEN = os.environ.get("SANDBOX_PROFILE_TOKEN", "sandbox-profile-token")
SPACE = os.environ.get("SANDBOX_SPACE_ID", "spa_sandbox")
PHONE = "+15555550166"

errors = []
client = Client("python-write-key", host=SEGMENT_URL, sync_mode=True, on_error=lambda e, batch: errors.append(e))
client.identify("py-user-1", {"phone": PHONE, "plan": "pro", "email": "Py@Example.com"})
client.page("py-user-1", category=None, name="Docs", properties={"path": "/docs/python-client"})
client.track("py-user-1", "Flex - Engagement Completed",
             {"direction": "Inbound", "channelType": "sms", "lastKnownAgentWorkerSid": "WKpython", "duration": 42})
client.flush()
assert not errors, f"the client reported errors: {errors}"


def traits(identifier):
    request = urllib.request.Request(
        f"{SEGMENT_URL}/v1/spaces/{SPACE}/collections/users/profiles/{identifier}/traits?limit=200",
        headers={"Authorization": "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["traits"]


for identifier in ["user_id:py-user-1", "phone:%2B15555550166", "email:py@example.com"]:
    got = traits(identifier)
    expected = {"plan": "pro", "docs_last_2_days": 1, "total_inbounds": 1, "last_known_service_agent": "WKpython"}
    missing = {k: v for k, v in expected.items() if got.get(k) != v}
    assert not missing, f"{identifier}: expected {missing}, got {got}"

print("python client: 1 passed, 0 failed")
sys.exit(0)
