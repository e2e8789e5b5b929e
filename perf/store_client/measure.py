import json, os, subprocess, statistics, time, urllib.request, sys
port = 4598
dyn = subprocess.Popen([os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/dynalite/node_modules/.bin/dynalite"), "--port", str(port), "--host", "127.0.0.1", "--createTableMs", "0"], stdout=subprocess.DEVNULL)
time.sleep(1.5)
def call(target, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=json.dumps(body).encode(), headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810." + target,
        "X-Amz-Date": "20261206T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=a/20261206/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc"})
    return json.load(urllib.request.urlopen(req))
call("CreateTable", {"TableName": "traits", "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}], "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"})
time.sleep(0.5)
call("PutItem", {"TableName": "traits", "Item": {"id": {"S": "phone:+15555550100"}, "traits": {"M": {"vip": {"BOOL": True}}}}})
env = dict(os.environ, TABLE="traits", AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{port}", AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret", AWS_SESSION_TOKEN="token")
runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
res = {}
for name in ["echo", "sigv4", "sdk"] * 1:
    res[name] = []
for i in range(runs):
    for name in ["echo", "sigv4", "sdk"]:
        t = time.perf_counter()
        out = subprocess.run([os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", name)], env=env, capture_output=True, text=True)
        res[name].append((time.perf_counter() - t) * 1000)
        assert out.returncode == 0, (name, out.stderr)
        if name != "echo": assert out.stdout.strip() == "2", (name, out.stdout)
for name, xs in res.items():
    xs.sort()
    print(f"{name}: p50 {statistics.median(xs):.2f} ms, p90 {xs[int(len(xs)*0.9)]:.2f} ms, min {xs[0]:.2f} ms")
dyn.terminate()
