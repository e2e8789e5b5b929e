#!/usr/bin/env python3
"""The trait store's SigV4 test vector, computed by botocore (AWS's own Python signer).

    scripts/sigv4_vector.py           # prints the Authorization header
    scripts/sigv4_vector.py --check   # fails unless signing.rs's test expects exactly it

shared/src/adapters/dynamodb/signing.rs signs the same GetItem at the same time with
aws-sigv4; its test holds the signature printed here, so CI checks it against botocore.
"""
import datetime
import pathlib
import sys
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

BODY = '{"TableName":"traits","Key":{"id":{"S":"phone:+15555550100"}}}'
request = AWSRequest(
    method="POST",
    url="https://dynamodb.us-east-1.amazonaws.com/",
    data=BODY,
    headers={"content-type": "application/x-amz-json-1.0", "x-amz-target": "DynamoDB_20120810.GetItem"},
)
credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
with mock.patch("botocore.auth.get_current_datetime", return_value=datetime.datetime(2026, 12, 6)):
    SigV4Auth(credentials, "dynamodb", "us-east-1").add_auth(request)
authorization = request.headers["Authorization"]
signature = authorization.rsplit("Signature=", 1)[1]
if "--check" not in sys.argv:
    print(authorization)
    sys.exit(0)
rust = pathlib.Path(__file__).resolve().parent.parent / "shared/src/adapters/dynamodb/signing.rs"
if f"Signature={signature}" not in rust.read_text():
    sys.exit(f"signing.rs does not expect botocore's signature {signature}")
print(f"signing.rs expects botocore's signature {signature}")
