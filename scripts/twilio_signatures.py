#!/usr/bin/env python3
"""Signs the end-to-end tests' requests with Twilio's own validator (twilio-python's
RequestValidator), so that route-decision's signature check is tested against Twilio's
library, not against our own code.

    python scripts/twilio_signatures.py           # writes tests/fixtures/twilio/signatures.json
    python scripts/twilio_signatures.py --check   # fails if the file is not what the library signs

CI runs --check with the library installed (`pip install twilio`); the Rust tests read the
file, so they run on any machine.
"""
import hashlib
import json
import pathlib
import sys
from urllib.parse import urlencode

import twilio
from twilio.request_validator import RequestValidator

TOKEN = "twilio-auth-token-for-tests"  # e2e::TWILIO_TOKEN
HOST = "abcdefghij.lambda-url.us-east-1.on.aws"  # e2e::FUNCTION_URL_HOST
USER, PASSWORD = "studio", "s3cret-in-the-url"
FIXTURE = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/twilio/signatures.json"

FORM = {"From": "+15555550100", "To": "+18005550000", "Body": "Where is my order?", "channel": "sms"}
JSON_BODY = json.dumps({"From": "+15555550100", "channel": "whatsapp"}, separators=(",", ":"))


def case(name, url, basic, form=None, body=None):
    validator = RequestValidator(TOKEN)
    if body is not None:
        url = f"{url}&bodySHA256={hashlib.sha256(body.encode()).hexdigest()}"
        signature = validator.compute_signature(url, {})
        assert validator.validate(url, body, signature)
    else:
        signature = validator.compute_signature(url, form)
        assert validator.validate(url, form, signature)
    query = url.split("?", 1)[1]
    entry = {"name": name, "signed_url": url, "query": query, "basic": basic, "signature": signature}
    if body is not None:
        entry["json"] = body
    else:
        entry["form"] = urlencode(form)
    return entry


def cases():
    plain = f"https://{HOST}/?flow=studio"
    with_credentials = f"https://{USER}:{PASSWORD}@{HOST}/?flow=studio"
    with_port = f"https://{USER}:{PASSWORD}@{HOST}:443/?flow=studio"
    return {
        "library": f"twilio-python {twilio.__version__}",
        "auth_token": TOKEN,
        "basic_user": USER,
        "basic_password": PASSWORD,
        "cases": [
            case("form, URL signed without its credentials", plain, True, form=FORM),
            case("form, URL signed with its credentials", with_credentials, True, form=FORM),
            case("form, URL signed with its credentials and :443", with_port, True, form=FORM),
            case("JSON, URL signed with its credentials", with_credentials, True, body=JSON_BODY),
            case("form, no credentials sent", plain, False, form=FORM),
        ],
    }


def main():
    text = json.dumps(cases(), indent=2) + "\n"
    if "--check" in sys.argv:
        if FIXTURE.read_text() != text:
            sys.exit(f"{FIXTURE} is not what {twilio.__version__} signs; run scripts/twilio_signatures.py")
        print(f"{FIXTURE.name}: matches what twilio-python {twilio.__version__} signs")
        return
    FIXTURE.write_text(text)
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
